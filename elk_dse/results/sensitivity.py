"""Sensitivity of an objective to the searched parameters: importance (Optuna's evaluators) and effects.

Importance is computed on the Parquet rows, not on the Optuna storage: an in-memory study is filled with the
feasible trials (distributions inferred from the columns), so a report needs nothing but the sweep folder and
works for sweeps stored in a remote database too. Optuna is imported lazily, here only: fANOVA when
scikit-learn is installed (Optuna's default evaluator), PED-ANOVA (no extra dependency) otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from elk_dse.results._mpl import COLORS as _COLORS
from elk_dse.results._mpl import finish, plt
from elk_dse.results._mpl import frozen as _frozen
from elk_dse.results._mpl import mpl_text as _mpl_text
from elk_dse.results.pareto import Objective, feasible_mask, resolve_column
from elk_dse.results.store import PARAM_PREFIX
from elk_dse.results.units import axis_label, bare_name, config_unit, human_name, unit_for

# Fewer feasible trials than this give importances that are noise: the section says so instead.
MIN_TRIALS = 8


@dataclass(frozen=True)
class ImportanceData:
    """Importance of each varied parameter for ``objective`` (fractions summing to 1, largest first)."""

    objective: str
    evaluator: str
    params: tuple[str, ...]
    importance: np.ndarray
    n_trials: int


@dataclass(frozen=True)
class EffectData:
    """The objective (base units) of every feasible trial against one parameter.

    ``categories`` is set for a non-numeric parameter: ``x`` then holds each trial's category index.
    """

    param: str
    objective: str
    x: np.ndarray
    y: np.ndarray
    categories: tuple[str, ...] | None


def _varied_params(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith(PARAM_PREFIX) and df[c].nunique(dropna=True) > 1]


def _usable(df: pd.DataFrame, objective: str) -> tuple[pd.DataFrame, str]:
    col = resolve_column(df, objective)
    ok = df[feasible_mask(df)]
    ok = ok[np.isfinite(ok[col].to_numpy(dtype=np.float64, na_value=np.nan))]
    return ok, col


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def importance_data(df: pd.DataFrame, objective: Objective, seed: int = 0) -> ImportanceData:
    """Parameter importances for ``objective`` over the feasible COMPLETE trials of ``df``.

    Raises ValueError when fewer than MIN_TRIALS trials are usable or no parameter varies, ImportError when
    Optuna is not installed.
    """
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    ok, col = _usable(df, objective.name)
    params = [p for p in _varied_params(ok) if ok[p].notna().all()]
    if len(ok) < MIN_TRIALS:
        raise ValueError(f"only {len(ok)} feasible trials (need {MIN_TRIALS}) for parameter importance")
    if not params:
        raise ValueError("no searched parameter varies over the feasible trials")
    dists: dict[str, BaseDistribution] = {}
    for p in params:
        s = ok[p]
        if pd.api.types.is_integer_dtype(s):
            dists[p] = IntDistribution(int(s.min()), int(s.max()))
        elif _is_numeric(s):
            dists[p] = FloatDistribution(float(s.min()), float(s.max()))
        else:
            dists[p] = CategoricalDistribution(sorted(map(str, s.unique())))
    values = ok[col].to_numpy(dtype=np.float64)
    columns = {p: ok[p].tolist() for p in params}
    trials = []
    for i in range(len(ok)):
        point = {}
        for p in params:
            v = columns[p][i]
            point[p] = str(v) if isinstance(dists[p], CategoricalDistribution) else v
        trials.append(optuna.trial.create_trial(params=point, distributions=dists, value=float(values[i])))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=objective.direction)
    study.add_trials(trials)
    try:
        import sklearn  # noqa: F401  (fANOVA needs it)

        evaluator: optuna.importance.BaseImportanceEvaluator = optuna.importance.FanovaImportanceEvaluator(
            seed=seed
        )
        name = "fANOVA"
    except ImportError:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        name = "PED-ANOVA"
    imp = optuna.importance.get_param_importances(study, evaluator=evaluator, normalize=True)
    names = tuple(imp)
    return ImportanceData(col, name, names, _frozen([imp[n] for n in names]), len(ok))


def effect_data(df: pd.DataFrame, param: str, objective: str) -> EffectData:
    """Objective against ``param`` over the feasible COMPLETE trials (rows missing either are left out)."""
    ok, col = _usable(df, objective)
    ok = ok[ok[param].notna()]
    s = ok[param]
    if _is_numeric(s):
        return EffectData(param, col, _frozen(s.to_numpy(dtype=np.float64)), _frozen(ok[col]), None)
    cats = tuple(sorted(map(str, s.unique())))
    index = {c: i for i, c in enumerate(cats)}
    x = np.array([index[str(v)] for v in s], dtype=np.float64)
    return EffectData(param, col, _frozen(x), _frozen(ok[col]), cats)


def draw_importance(data: ImportanceData, path: Path | str) -> Path:
    """Horizontal bars of the importances (most important on top)."""
    n = len(data.params)
    fig, ax = plt.subplots(figsize=(7.5, max(2.4, 1.0 + 0.35 * n)), dpi=110)
    try:
        y = np.arange(n)
        ax.barh(y, data.importance, color=_COLORS[0], height=0.6)
        for yi, v in zip(y, data.importance, strict=True):
            ax.text(v, float(yi), f" {v:.2f}", va="center", fontsize=8)
        ax.set_yticks(y, [_mpl_text(bare_name(p)) for p in data.params], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(1e-9, float(data.importance.max(initial=0.0))) * 1.18)
        ax.set_xlabel(f"importance for {human_name(data.objective)} [fraction of total, {data.evaluator}]")
        ax.set_title(f"Parameter importance ({data.n_trials} feasible trials)")
    except BaseException:
        plt.close(fig)
        raise
    return finish(fig, ax, path, "lower right")


def draw_effects(effects: Sequence[EffectData], path: Path | str) -> Path:
    """One panel per parameter: the objective of every feasible trial against it (shared y axis)."""
    if not effects:
        raise ValueError("draw_effects needs at least one EffectData")
    k = len(effects)
    fig, axes = plt.subplots(1, k, figsize=(min(4.0 * k, 12.0), 3.8), dpi=110, sharey=True, squeeze=False)
    try:
        ys = np.concatenate([e.y for e in effects])
        unit = unit_for(effects[0].objective, ys)
        jitter = np.random.default_rng(0)  # fixed: the same folder draws the same picture
        for ax, e in zip(axes[0], effects, strict=True):
            x = e.x + (jitter.uniform(-0.15, 0.15, len(e.x)) if e.categories else 0.0)
            ax.scatter(x, e.y * unit.scale, s=10, alpha=0.45, lw=0, color=_COLORS[0])
            if e.categories:
                ax.set_xticks(range(len(e.categories)), [_mpl_text(c) for c in e.categories], fontsize=8)
                ax.set_xlabel(_mpl_text(bare_name(e.param)), fontsize=9)
            else:
                # Parameters are plotted in their config units, which the key's suffix names.
                ax.set_xlabel(_mpl_text(axis_label(e.param, config_unit(e.param))), fontsize=9)
                v = e.x[np.isfinite(e.x)]
                if v.size and v.min() > 0 and v.max() / v.min() >= 16:
                    ax.set_xscale("log", base=2)
            ax.grid(True, which="both", alpha=0.3)
        axes[0][0].set_ylabel(axis_label(effects[0].objective, unit))
        v = ys[np.isfinite(ys)]
        if v.size and v.min() > 0 and v.max() / v.min() > 100:
            axes[0][0].set_yscale("log")
        fig.suptitle(f"{human_name(effects[0].objective)} against the most important parameters", fontsize=11)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return Path(path)
