"""The MIIT five-level quality ladder and the alert engine. Pure: no broker, web or metrics imports."""
