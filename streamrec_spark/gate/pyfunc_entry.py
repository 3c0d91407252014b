"""The model file of the registered MLflow model ("models from code").

``mlflow.pyfunc.save_model`` copies this file into the model folder, and
``mlflow.pyfunc.load_model`` runs it to get the model object. Only MLflow runs it: no module of
the package imports it.
"""

from mlflow.models import set_model

from streamrec_spark.gate.mlflow_model import StreamrecPyfuncModel

set_model(StreamrecPyfuncModel())
