"""FastAPI service: a materialized view of the status and alert topics, metrics and the control-room page."""
