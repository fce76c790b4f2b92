"""Kumo's python3 runtime entry point: `python -B -s -S /var/runtime/bootstrap.py`."""
import kumo_runtime

kumo_runtime.main()
