"""Search spaces: ordered choices seen by the sampler as ranks, conditional parameters, grids over them."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from elk_dse.cli import main
from elk_dse.errors import ConfigError
from elk_dse.results.store import ResultStore
from elk_dse.search.space import Objective, ParamSpec, SearchSpace, apply_params, grid_points, load_space


def write_space(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_numeric_choices_are_asked_as_ranks_and_decoded(tmp_path):
    space = load_space(str(write_space(tmp_path, (
        "objectives: [{metric: latency_s}]\n"
        "params:\n"
        "  chip.interconnect.link_bytes_per_cycle: {choices: [64, 16, 32]}\n"
        "  chip.interconnect.topology: {choices: [mesh, torus]}\n"))))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        values = space.suggest(trial)
        # The study holds a rank among the sorted choices, the trial's values are the choices themselves.
        rank = trial.params["chip.interconnect.link_bytes_per_cycle[i]"]
        assert values["chip.interconnect.link_bytes_per_cycle"] == (16, 32, 64)[rank]
        assert trial.params["chip.interconnect.topology"] == values["chip.interconnect.topology"]
        assert space.decode(trial.params) == values
        assert space.encode(values) == trial.params
        study.tell(trial, 1.0)
        seen.add(values["chip.interconnect.link_bytes_per_cycle"])
    assert seen == {16, 32, 64}
    dist = study.trials[0].distributions["chip.interconnect.link_bytes_per_cycle[i]"]
    assert isinstance(dist, optuna.distributions.IntDistribution) and (dist.low, dist.high) == (0, 2)


def test_decode_reads_studies_that_stored_plain_values():
    space_params = {"chip.interconnect.link_bytes_per_cycle": 32}
    space = SearchSpace("s", (Objective("latency_s"),),
                        (("chip.interconnect.link_bytes_per_cycle", ParamSpec(choices=(16, 32))),))
    assert space.decode(space_params) == space_params


TOPOLOGY_GRID = (
    "objectives: [{metric: latency_s}]\n"
    "params:\n"
    "  chip.interconnect.topology: {choices: [mesh, ring]}\n"
    "  chip.cores.grid: {choices: ['8x8', '4x16'], when: {chip.interconnect.topology: mesh}}\n"
    "  chip.hbm.attach: {choices: [edge, all]}\n")


def test_conditional_parameter_only_where_its_condition_holds(tmp_path):
    space = load_space(str(write_space(tmp_path, TOPOLOGY_GRID)))
    points = grid_points(space)
    # mesh x 2 shapes x 2 attach + ring x 2 attach: the shape is never crossed with the ring.
    assert len(points) == 6
    assert all(("chip.cores.grid" in p) == (p["chip.interconnect.topology"] == "mesh") for p in points)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = space.suggest(study.ask())
        assert ("chip.cores.grid" in values) == (values["chip.interconnect.topology"] == "mesh")


def test_a_shape_choice_becomes_the_grid_list():
    base = {"chip": {"cores": {"count": 64, "grid": [8, 8]}}}
    assert apply_params(base, {"chip.cores.grid": "4x16"})["chip"]["cores"]["grid"] == [4, 16]
    with pytest.raises(ConfigError, match=r"params.chip.cores.grid.*4by16.*shape like 8x8"):
        apply_params(base, {"chip.cores.grid": "4by16"})


@pytest.mark.parametrize("when, needle", [
    ("{chip.hbm.attach: edge}", "declared above"),            # a parameter declared later
    ("{chip.interconnect.topolgy: mesh}", "topology"),        # a typo: did-you-mean
    ("{chip.interconnect.topology: torus}", "among its choices"),
])
def test_bad_condition_rejected_with_one_line(tmp_path, capsys, when, needle):
    text = TOPOLOGY_GRID.replace("{chip.interconnect.topology: mesh}", when)
    path = write_space(tmp_path, text)
    code = main(["sweep", "+chip=mesh64", f"sweep={path}", f"out={tmp_path / 'o'}", "search.workers=0",
                 "progress=false"])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "when" in err and len(err.strip().splitlines()) == 1


def test_grid_sweep_over_a_conditional_space_covers_each_point_once(tmp_path, capsys):
    path = write_space(tmp_path, TOPOLOGY_GRID)
    out = tmp_path / "grid"
    assert main(["sweep", "+chip=mesh64", f"sweep={path}", f"out={out}", "search.sampler=grid",
                 "search.n_trials=100", "search.batch_size=4", "search.workers=0", "progress=false",
                 "report=false"]) == 0
    df = ResultStore(out).read()
    assert len(df) == 6 and (df["status"] == "COMPLETE").all()
    keys = df[["param.chip.interconnect.topology", "param.chip.cores.grid", "param.chip.hbm.attach"]]
    assert not keys.astype(str).duplicated().any()
    ring = df["param.chip.interconnect.topology"] == "ring"
    assert df.loc[ring, "param.chip.cores.grid"].isna().all()
    assert df.loc[~ring, "param.chip.cores.grid"].notna().all()
    # The shape changes the chip: an edge-attached 4x16 mesh has a different latency than an 8x8 one.
    mesh_edge = df[~ring & (df["param.chip.hbm.attach"] == "edge")].set_index("param.chip.cores.grid")
    assert mesh_edge.loc["4x16", "metric.latency_s"] != mesh_edge.loc["8x8", "metric.latency_s"]


def test_unparseable_shape_rejected_before_any_trial(tmp_path, capsys):
    path = write_space(tmp_path, TOPOLOGY_GRID.replace("'4x16'", "'4by16'"))
    out = tmp_path / "o"
    code = main(["sweep", "+chip=mesh64", f"sweep={path}", f"out={out}", "search.workers=0", "progress=false"])
    err = capsys.readouterr().err
    assert code == 2 and "4by16" in err and len(err.strip().splitlines()) == 1
    assert not (out / "results.parquet").exists()


def test_tpe_sweep_is_reproducible_and_starts_from_a_sobol_batch(tmp_path, capsys):
    args = ["sweep", "+chip=mesh64", "search.sampler=tpe", "search.n_trials=12", "search.batch_size=4",
            "search.workers=0", "progress=false", "report=false"]
    assert main([*args, f"out={tmp_path / 'a'}"]) == 0
    assert main([*args, f"out={tmp_path / 'b'}"]) == 0
    a = ResultStore(tmp_path / "a").read().drop(columns=["duration_s", "metric.eval_s"])
    b = ResultStore(tmp_path / "b").read().drop(columns=["duration_s", "metric.eval_s"])
    assert len(a) == 12
    assert a.equals(b)
    # The first batch came from the QMC sampler, which records its sequence position in the study.
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "a" / "optuna.journal")))
    attrs = storage.get_study_system_attrs(storage.get_study_id_from_name("elk_dse"))
    assert [v for k, v in attrs.items() if k.startswith("qmc:")] == [2]  # trials 1-3 (trial 0 seeds the space)


def test_the_readme_example_space_runs(tmp_path, capsys):
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"## Search spaces.*?```yaml\n(.*?)```", readme, re.S).group(1)
    path = write_space(tmp_path, block)
    out = tmp_path / "readme"
    assert main(["sweep", "+chip=mesh64", f"sweep={path}", f"out={out}", "search.n_trials=4",
                 "search.batch_size=4", "search.workers=0", "progress=false", "report=false"]) == 0
    df = ResultStore(out).read()
    assert len(df) == 4 and "param.chip.cores.grid" in df.columns
