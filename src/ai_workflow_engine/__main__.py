from ai_workflow_engine.cli import main

raise SystemExit(main())
