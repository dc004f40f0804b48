"""ASL every workflow shares, named by placeholder: retry and catch policies ("Retry": "${SageMakerJobRetry}")
and the failure states ("WorkflowFailed": "${WorkflowFailedState}"). A workflow's own states (its input
defaults, its jobs and their data) stay in its ASL file, where a reader sees them; what is the same in every
workflow comes from here, and the synthesized definition (what the console shows) has it all inlined.

Step Functions names a SageMaker API error after the SDK's exception class: `SageMaker.ResourceLimitExceededException`,
or `SageMaker.AmazonSageMakerException` for every error without a class of its own (throttling, validation,
access denied, a name in use). A `.sync` task that is retried after its job was created starts a second job, and
Step Functions does not stop the first, so `.sync` tasks retry only errors that no operation but Create* declares
(no job exists yet); `stacks.constructs.workflow` refuses any other Retry on them, and tests check the declarations in
botocore's SageMaker model.
"""
from __future__ import annotations

LAMBDA_TRANSIENT_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                           "Lambda.TooManyRequestsException"]

# A quota (instances of a type, concurrent jobs) frees up as other jobs end: wait a minute, then two.
_QUOTA = {"ErrorEquals": ["SageMaker.ResourceLimitExceededException"], "IntervalSeconds": 60, "BackoffRate": 2,
          "MaxAttempts": 2}

# Errors a `.sync` SageMaker task may retry: declared by the Create* operation only, so no job exists yet.
CREATE_ONLY_ERRORS = frozenset({"SageMaker.ResourceLimitExceededException"})

RETRY_POLICIES: dict[str, list[dict]] = {
    # Lambda's own transient failures; the function's errors (bad input) are never retried.
    "LambdaRetry": [{"ErrorEquals": LAMBDA_TRANSIENT_ERRORS, "IntervalSeconds": 2, "BackoffRate": 2,
                     "MaxAttempts": 3}],
    # `.sync` jobs: only errors raised before a job exists.
    "SageMakerJobRetry": [_QUOTA],
    # AWS SDK integrations name an error without a class of its own after the SDK's base class.
    "SageMakerSdkRetry": [{"ErrorEquals": ["SageMaker.SageMakerException"], "IntervalSeconds": 2,
                           "BackoffRate": 2, "MaxAttempts": 1}, _QUOTA],
    # Request-response calls (CreateModel): one short retry for throttling; a repeated create after a
    # success makes an unused model, which costs nothing.
    "SageMakerCallRetry": [{"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "IntervalSeconds": 2,
                            "BackoffRate": 2, "MaxAttempts": 1}, _QUOTA],
}

# Where errors go: bad input to its own named failure, anything else to the workflow's failure.
CATCH_POLICIES: dict[str, list[dict]] = {
    "CatchInvalidInput": [{"ErrorEquals": ["InvalidExecutionInput"], "ResultPath": "$", "Next": "InvalidInput"},
                          {"ErrorEquals": ["States.ALL"], "ResultPath": "$", "Next": "CouldNotStart"}],
    "CatchAll": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "WorkflowFailed"}],
}

# The failure states; ${WorkflowError} is the stack's own error name, <StackId>Failed.
SHARED_STATES: dict[str, dict] = {
    "InvalidInputState": {"Type": "Fail", "Error": "InvalidExecutionInput", "CausePath": "$.Cause"},
    "CouldNotStartState": {"Type": "Fail", "Error": "${WorkflowError}", "CausePath": "$.Cause"},
    "WorkflowFailedState": {"Type": "Fail", "Error": "${WorkflowError}", "CausePath": "$.error.Cause"},
}


def shared_asl(workflow_error: str) -> dict[str, object]:
    """Every shared placeholder with its value, for one workflow."""
    return {**RETRY_POLICIES, **CATCH_POLICIES, **SHARED_STATES, "WorkflowError": workflow_error}
