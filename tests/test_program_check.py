"""Program.check raises a typed error naming the op for each broken invariant (never a bare assert)."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import small_chip_dict

from elk_dse.compiler.compile import compile_graph
from elk_dse.compiler.schedulers import SchedulerConfig
from elk_dse.hw.chip import chip_from_dict
from elk_dse.models import ModelConfig, build_model
from elk_dse.program import Program, ProgramInvariantError


@pytest.fixture(scope="module")
def program() -> Program:
    chip = chip_from_dict(small_chip_dict(hbm={"capacity_gib": 128}))
    compiled = compile_graph(build_model(ModelConfig("llama2_7b", batch=1, kv_len=128)), chip,
                             SchedulerConfig(name="elk_full"))
    assert isinstance(compiled, Program)
    compiled.check()  # the compiler's own output holds every invariant
    return compiled


def _with_op(program: Program, index: int, **changes) -> Program:
    ops = list(program.ops)
    ops[index] = dataclasses.replace(ops[index], **changes)
    return dataclasses.replace(program, ops=tuple(ops))


def test_a_load_order_that_is_not_a_permutation_is_refused(program):
    # A real exception, not an AssertionError: asserts vanish under `python -O`, the invariants must not.
    assert not issubclass(ProgramInvariantError, AssertionError)
    broken = dataclasses.replace(program, load_order=(0,) * len(program.ops))
    with pytest.raises(ProgramInvariantError, match="not a permutation"):
        broken.check()


def test_a_forward_dependency_is_refused(program):
    with pytest.raises(ProgramInvariantError, match=r"op 1 .*dependency 5 is not an earlier op"):
        _with_op(program, 1, exec_after=(5,)).check()


def test_an_sram_split_larger_than_sram_is_refused(program):
    sram = program.chip.sram_bytes_per_core
    with pytest.raises(ProgramInvariantError, match="SRAM split"):
        _with_op(program, 2, sram_exec_bytes=float(sram), sram_preload_bytes=1.0).check()


def test_negative_work_is_refused(program):
    op = program.ops[3]
    numeric = next(f.name for f in dataclasses.fields(op.work)
                   if isinstance(getattr(op.work, f.name), float) and not isinstance(getattr(op.work, f.name), bool))
    work = dataclasses.replace(op.work, **{numeric: -1.0})
    with pytest.raises(ProgramInvariantError, match=f"negative work .*{numeric}"):
        _with_op(program, 3, work=work).check()


def test_a_plan_on_more_cores_than_the_chip_has_is_refused(program):
    plan = dataclasses.replace(program.ops[0].plan, cores_used=program.chip.num_cores + 1)
    with pytest.raises(ProgramInvariantError, match="cores; the chip has"):
        _with_op(program, 0, plan=plan).check()

