"""Per-parameter hyperparameter search with Optuna: one study per (synth, parameter).

The search space is *model family* (``gbm``, ``knn``, ``cnn``, ``autoencoder``,
``transformer``) × that family's hyperparameters × feature settings (log-mel
bands and hop, the time pooling of the log-mel statistics, and which feature
subset a tabular model sees: handcrafted descriptors, log-mel statistics or
both). The objective is the parameter's metric on a **fixed validation split**
— R² for a continuous parameter, balanced accuracy for a discrete one — and a
third, **test** split that no trial sees measures the refit best configuration
against the untuned default model and :class:`~synth_probe.models.MeanBaseline`.
Models and features come from :mod:`synth_probe.pipeline`, as for ``train`` and
the predictability suite.

Modules: :mod:`~synth_probe.tuning.storage` (journal files and database URLs, the
journal heartbeat), :mod:`~synth_probe.tuning.space` (families, hyperparameters,
feature settings, the per-family pruner), :mod:`~synth_probe.tuning.context` (the
configuration, split, targets and feature cache), :mod:`~synth_probe.tuning.run`
(objective, workers, reference scores, refit, summary and report data) and
:mod:`~synth_probe.tuning.dataset` (the default dataset of ``tune``).

Layout of a study folder (``studies/<synth>/<param>/``)::

    study.journal        Optuna JournalStorage file (default storage; git-ignored)
    heartbeats/          one file per running trial, touched by its worker (journal storage)
    best_model/          the best configuration refit on train + validation (models.io format)
    summary.json         what the last report showed (scores, gains, best configuration)
    refit.lock           serializes the refit when several workers finish together

Features are cached per feature setting in ``studies/<synth>/_features/<dataset>/``
(full log-mel spectrograms per ``(n_mels, hop)``, handcrafted descriptors), so
trials, workers and studies of other parameters on the same dataset never
compute them twice.

Pruning: torch models report after every epoch, LightGBM every few boosting
rounds (through the estimators' ``fit(..., callbacks=...)``), the *skill* on their
internal early-stopping split, at a step measured in percent of the trial's budget,
so families with different budgets share one axis. :class:`FamilyMedianPruner`
compares a trial only with finished trials of its own family.

The first trial of a new study is the untuned default configuration (the first
searched family with its constructor defaults and default features).
"""
from __future__ import annotations

from synth_probe.tuning.context import (
    FeatureStore,
    TuneConfig,
    TuneContext,
    check_audible,
    split_rows,
    study_dir,
    synth_label,
)
from synth_probe.tuning.dataset import default_dataset, default_plan
from synth_probe.tuning.run import (
    Objective,
    load_study,
    refit_best,
    reference_scores,
    report_data,
    run_tuning,
    summarize,
)
from synth_probe.tuning.space import (
    FAMILIES,
    TORCH_FAMILIES,
    FamilyMedianPruner,
    default_trial_params,
    enqueue_default,
    make_pruner,
    parse_families,
    suggest_features,
    suggest_model,
)
from synth_probe.tuning.storage import (
    JournalHeartbeat,
    file_lock,
    mask_url,
    open_storage,
    retry_callback,
    scrub_secrets,
)

__all__ = [
    "FAMILIES",
    "TORCH_FAMILIES",
    "FamilyMedianPruner",
    "FeatureStore",
    "JournalHeartbeat",
    "Objective",
    "TuneConfig",
    "TuneContext",
    "check_audible",
    "default_dataset",
    "default_plan",
    "default_trial_params",
    "enqueue_default",
    "file_lock",
    "load_study",
    "make_pruner",
    "mask_url",
    "open_storage",
    "parse_families",
    "refit_best",
    "reference_scores",
    "report_data",
    "retry_callback",
    "run_tuning",
    "scrub_secrets",
    "split_rows",
    "study_dir",
    "suggest_features",
    "suggest_model",
    "summarize",
    "synth_label",
]
