"""Background jobs on Taskiq: its Redis broker when REDIS_URL is set, in-process otherwise."""
