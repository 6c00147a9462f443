"""keras-tuner RandomSearch over the CNN's dense units and learning rate, tracked in MLflow.

The search is one parent run; every trial is a child run with its hyperparameters and per-epoch
metrics. As in the study, the best configuration is then retrained from scratch for
`cnn.epochs` (a trial trains only `tuner.epochs`) as one more child run; that model is
evaluated and registered, and the best values are written to wd.metrics/tune_cnn.json.
With `tuner.retrain: false` the search's best checkpoint is registered instead.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from artflow import runtime
from artflow.classify.evaluate import EXPERIMENT
from artflow.classify.train import finalize, load_data, split_files, write_metrics
from artflow.config import Settings
from artflow.data.layout import Workdir
from artflow.registry import tracking


def _execution_logger() -> Any:
    """Per-epoch metrics of each execution of a trial, as `execution_<n>/<metric>`.

    keras-tuner deep-copies callbacks for every execution; the counter lives in a closure,
    which deepcopy shares, so each copy knows which execution it is.
    """
    import keras
    import mlflow

    state = {"execution": 0}

    class ExecutionLogger(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
            state["execution"] += 1

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            prefix = f"execution_{state['execution']}/"
            metrics = {prefix + k: float(v) for k, v in (logs or {}).items()}
            tracking._retry(lambda: mlflow.log_metrics(metrics, step=epoch))

    return ExecutionLogger()


def _tuner_class() -> type:
    import keras_tuner as kt

    class MlflowRandomSearch(kt.RandomSearch):
        """RandomSearch whose trials are MLflow child runs of the active (search) run."""

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            import mlflow

            values = trial.hyperparameters.values
            tags = {"artflow.stage": "tune-trial", "artflow.trial_id": str(trial.trial_id)}
            with mlflow.start_run(run_name=f"trial-{trial.trial_id}", nested=True, tags=tags):
                mlflow.log_params(values)
                kwargs["callbacks"] = [*kwargs.get("callbacks", []), _execution_logger()]
                histories = super().run_trial(trial, *args, **kwargs)
                objective = self.oracle.objective.name
                best = [max(h.history[objective]) for h in histories if h.history.get(objective)]
                if best:  # keras-tuner's trial score: the mean over executions of the best epoch
                    mlflow.log_metric(objective, sum(best) / len(best))
            return histories

    return MlflowRandomSearch


def _project_name(settings: Settings, wd: Workdir) -> str:
    """Same data + search space + input size -> same project, so an interrupted search resumes."""
    digest = hashlib.md5()
    digest.update(tracking.data_hash(split_files(wd)).encode())
    digest.update(settings.tuner.model_dump_json().encode())
    digest.update(f"{settings.images.size}/{settings.cnn.model_dump_json()}".encode())
    return f"cnn_{digest.hexdigest()[:10]}"


def tune_cnn(settings: Settings, wd: Workdir, verbose: int = 2) -> dict[str, Any]:
    """Run the search, register the best model; returns best values, trials and metrics."""
    import keras
    import mlflow

    from artflow.classify.cnn import build_cnn

    cfg, size = settings.tuner, settings.images.size
    data = load_data(settings, wd, size, settings.cnn.batch_size)
    n = len(data["labels"])
    strategy = runtime.configure(settings.training, settings.seed)

    def build(hp: Any) -> Any:
        units = hp.Int("dense_units", cfg.units_min, cfg.units_max, step=cfg.units_step)
        lr = hp.Choice("learning_rate", cfg.learning_rates)
        return build_cnn(n, size, units, settings.cnn.dropout, lr, settings.cnn.dense_layers)

    default = type(strategy).__name__ == "_DefaultDistributionStrategy"
    params = {f"tuner.{k}": v for k, v in cfg.model_dump().items()}
    params.update(image_size=size, n_classes=n, seed=settings.seed)
    tags = {"artflow.family": "cnn", "artflow.stage": "tune"}
    with tracking.start_run(
        EXPERIMENT, "tune-cnn", settings, params=params, data_files=split_files(wd), tags=tags
    ) as run:
        tuner = _tuner_class()(
            hypermodel=build,
            objective="val_accuracy",
            max_trials=cfg.max_trials,
            executions_per_trial=cfg.executions_per_trial,
            seed=settings.seed,
            # 1: a failing trial raises at once instead of surfacing at get_best_models
            # (docs/stack-notes.md)
            max_consecutive_failed_trials=1,
            directory=str(wd.models / "tuner"),
            project_name=_project_name(settings, wd),
            distribution_strategy=None if default else strategy,
        )
        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=settings.cnn.early_stopping_patience
        )
        tuner.search(
            data["train"].dataset,
            validation_data=data["val"].dataset,
            epochs=cfg.epochs,
            class_weight=data["class_weight"],
            callbacks=[stop],
            shuffle=False,
            verbose=verbose,
        )
        trials = _trials(tuner)
        best = tuner.get_best_hyperparameters(1)[0].values
        mlflow.log_params({f"best.{k}": v for k, v in best.items()})
        mlflow.log_metric("best_val_accuracy", trials[0]["score"])
        mlflow.log_dict(trials, "trials.json")
        if cfg.retrain:
            model = _retrain(build, tuner.get_best_hyperparameters(1)[0], data, settings, wd)
        else:
            model = tuner.get_best_models(1)[0]
        out = wd.reports / "classifier" / "tune_cnn"
        result = finalize(model, settings, wd, "cnn", data["labels"], size, out)
        result.update(run_id=run.info.run_id, best=best, trials=trials, epochs=cfg.epochs)
    _write(wd, result)
    return result


def _retrain(build: Any, hp: Any, data: dict[str, Any], settings: Settings, wd: Workdir) -> Any:
    """The best configuration trained afresh for cnn.epochs (early stopping on val_loss)."""
    import mlflow

    from artflow.classify.train import callbacks, run_key

    tags = {"artflow.stage": "tune-retrain"}
    with mlflow.start_run(run_name="retrain-best", nested=True, tags=tags):
        mlflow.log_params({**hp.values, "epochs": settings.cnn.epochs})
        model = build(hp)
        best = json.dumps(hp.values, sort_keys=True)
        key = hashlib.md5(f"{run_key(settings, wd, 'cnn')}|{best}".encode()).hexdigest()[:10]
        model.fit(
            data["train"].dataset,
            validation_data=data["val"].dataset,
            epochs=settings.cnn.epochs,
            class_weight=data["class_weight"],
            shuffle=False,  # the tf.data pipeline shuffles (seeded)
            callbacks=callbacks(wd, "cnn_tuned", settings.cnn.early_stopping_patience, key),
            verbose=0,
        )
    return model


def _trials(tuner: Any) -> list[dict[str, Any]]:
    """Finished trials, best first: id, hyperparameters, score, status."""
    done = tuner.oracle.get_best_trials(num_trials=len(tuner.oracle.trials))
    return [
        {
            "trial_id": t.trial_id,
            "values": t.hyperparameters.values,
            "score": None if t.score is None else float(t.score),
            "status": str(t.status),
        }
        for t in done
    ]


def _write(wd: Workdir, result: dict[str, Any]) -> Path:
    write_metrics(wd, "tune_cnn", result)
    path = wd.metrics / "tune_cnn.json"
    data = json.loads(path.read_text())
    data.update(best=result["best"], trials=len(result["trials"]))
    data["best_val_accuracy"] = result["trials"][0]["score"]
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
