"""What a model container of the kit is told to serve with (the SAGEMAKER_* variables of the scikit-learn serving
toolkit, sagemaker-inference): where its code is, what it answers by default, and the fitted preprocessing's module.
Standard library only: it ships beside the function that checks a registered version's containers."""

CODE_DIRECTORY = "/opt/ml/model/code"  # where the code repacked into the model archive is (SAGEMAKER_SUBMIT_DIRECTORY)
# Every served module of the kit gets these besides its SAGEMAKER_PROGRAM, and nothing else.
SERVING_ENVIRONMENT = {"SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIRECTORY, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}
PREPROCESSOR_PROGRAM = "features.py"  # the fitted preprocessing's module in its archive (processing/features.py)


def serving_environment(program: str) -> dict[str, str]:
    """The environment of a container serving `program` (a .py module under CODE_DIRECTORY)."""
    return {"SAGEMAKER_PROGRAM": program, **SERVING_ENVIRONMENT}


def built_in_algorithm(container: dict, xgboost_image: str) -> bool:
    """A registered model container that runs SageMaker's built-in XGBoost algorithm: the XGBoost image told
    nothing (a team's script in that image has its SAGEMAKER_PROGRAM)."""
    return container.get("Image") == xgboost_image and not container.get("Environment")
