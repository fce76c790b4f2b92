"""Kumo's example function: greets the caller and shows what it ran with."""

import os

INVOCATIONS = 0  # module state survives while the instance stays warm


def lambda_handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    print(f"greeting {name} (invocation {INVOCATIONS} of this instance)")
    return {
        "message": f"Hello, {name}!",
        "function": context.function_name,
        "version": context.function_version,
        "request_id": context.aws_request_id,
        "memory_mb": int(context.memory_limit_in_mb),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "warm_invocations": INVOCATIONS,
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
    }
