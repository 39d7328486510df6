# %% [markdown]
# # elk_dse from Python
# A notebook in script form (`# %%` cells: VS Code, Jupytext and Spyder open it as a notebook). The test
# suite runs it top to bottom (tests/test_api.py), so every cell here works as written.

# %%
import elk_dse

# One design point: the mesh64 chip running Llama-2-7B decode (batch 1, KV 2,048), compiled with Elk.
r = elk_dse.evaluate(chip="mesh64", model="llama2_7b")
print(f"latency {r.latency_s * 1e3:.2f} ms, roofline bound {r.roofline_latency_s * 1e3:.2f} ms, "
      f"{r.area_mm2:.0f} mm^2, {r.energy_j * 1e3:.1f} mJ")
assert r.feasible and r.latency_s >= r.roofline_latency_s

# %%
# Overrides: a mapping of dotted keys, or keyword arguments with "__" for the dots.
bigger = elk_dse.evaluate(chip="mesh64", model="llama2_7b", overrides={"chip.cores.sram_kib": 2048},
                          chip__hbm__bandwidth_gb_s=3200, model__batch=8)
print(f"batch 8, 2 MiB SRAM per core, 3.2 TB/s: {bigger.throughput_per_s:.0f} tokens/s "
      f"(was {r.throughput_per_s:.0f})")

# %%
# The whole output contract, as `evaluate format=json` prints it.
contract = r.to_dict()
print(sorted(contract)[:8], "...", len(contract), "keys")

# %%
# An infeasible point is a result with a reason, not an exception.
tiny = elk_dse.evaluate(chip="mesh64", model="llama2_70b", chip__hbm__capacity_gib=16)
print(tiny.feasible, tiny.infeasible_reason, "-", tiny.infeasible_detail)

# %%
# Bad input raises ConfigError with the CLI's one-line message.
try:
    elk_dse.evaluate(chip="mesh64", model="llama9")
except elk_dse.ConfigError as err:
    print("error:", err)

# %%
# A small sweep, in this process (workers=0): rows, Pareto front and knee, the Optuna study, the report.
s = elk_dse.sweep(chip="mesh64", model="llama2_7b", n_trials=16, batch_size=8, workers=0, out="results/api_tour")
print(len(s.rows), "rows;", len(s.front), "Pareto designs; knee: trial", int(s.knee["trial"]))
print("study:", s.study.study_name, s.study.metric_names, "report:", s.report)

# %%
# Any sweep folder, later, from its files alone.
again = elk_dse.load("results/api_tour")
assert len(again.rows) == len(s.rows)
