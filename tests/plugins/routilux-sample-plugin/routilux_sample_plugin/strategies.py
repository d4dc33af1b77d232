"""The error strategy this plugin contributes, used as ``ErrorHandler(strategy=...)``."""

from __future__ import annotations

from routilux_kernel import ActivationFailure, ErrorAction, ErrorDecision


class RecordAndContinue:
    """Record the error in ``job_state.shared_data["sample.errors"]`` and let the job go on."""

    def decide(self, failure: ActivationFailure) -> ErrorDecision:
        errors = failure.job_state.shared_data.setdefault("sample.errors", [])
        errors.append(f"{failure.routine_id}: {type(failure.error).__name__}: {failure.error}")
        return ErrorDecision(ErrorAction.CONTINUE, reason="recorded by sample.record_and_continue")
