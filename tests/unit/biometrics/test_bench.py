"""The benchmark harness at a tiny size: the report, exact ground truth in blocks, the sweep."""

from __future__ import annotations

import numpy as np
import pytest

from services.biometrics.bench import exact
from services.biometrics.bench.fpir import render_fpir, run_fpir_bench
from services.biometrics.bench.progress import Bars
from services.biometrics.bench.report import render_text, run_biometrics_bench
from services.biometrics.bench.sweep import render_sweep, run_index_sweep
from services.biometrics.scoring import fused_scores
from services.world.tenprints import SyntheticFingerprints
from tests.unit.biometrics.captures import GALLERY, Fingers


def test_the_benchmark_runs_at_a_tiny_size_and_reports_every_figure() -> None:
    report = run_biometrics_bench(gallery=300, probes=20, seed=3, progress=False)
    for key in (
        "gallery",
        "probes",
        "rank1",
        "fnir_at_fpir_0_001",
        "fnir_at_fpir_0_01",
        "mate_recall_vs_exact",
        "search_ms",
        "qps",
        "enroll_per_s",
        "bytes_per_identity",
        "save_s",
        "load_s",
        "peers",
    ):
        assert key in report, key
    assert set(report["search_ms"]) >= {"p50", "p99"}
    assert set(report["peers"]) == {"exact", "faiss_hnsw"}
    assert report["peers"]["exact"]["mate_recall_vs_exact"] == 1.0
    assert report["rank1"] == 1.0 and report["gallery"] == 300
    assert "trade-off" in render_text(report)


def test_exact_brute_force_in_blocks_finds_each_probes_best(
    prints: SyntheticFingerprints, people: Fingers, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(11)
    gallery = prints.capture_many(people, rng)
    probes = prints.capture_many(people[rng.choice(GALLERY, 23, replace=False)], rng)
    # Blocks that do not divide the probes or the gallery evenly.
    monkeypatch.setattr(exact, "EXACT_CHUNK", 97)
    monkeypatch.setattr(exact, "EXACT_PROBE_BLOCK", 5)
    labels, scores = exact.exact_top1(gallery, probes, Bars(False))
    for i in range(len(probes)):
        each = fused_scores(probes.vectors[i], probes.present[i], gallery.vectors, gallery.present)
        assert labels[i] == int(each.argmax())
        assert scores[i] == pytest.approx(float(each.max()), abs=1e-5)


def test_the_sweep_reports_each_m_and_ef() -> None:
    report = run_index_sweep(
        gallery=400,
        probes=30,
        seed=3,
        ms=[8, 16],
        efs=[8, 32],
        ef_construction=32,
        rescore=8,
        progress=False,
    )
    assert [(r["m"], r["ef"]) for r in report["rows"]] == [(8, 8), (8, 32), (16, 8), (16, 32)]
    for row in report["rows"]:
        assert 0 <= row["missed"] <= report["exact_finds_mate"] <= 30
        assert row["mean_ms"] > 0 and row["qps"] > 0 and row["enroll_per_s"] > 0
    assert "missed" in render_sweep(report)


def test_the_fpir_bench_reports_the_threshold_and_fpir_at_each_gallery_size() -> None:
    report = run_fpir_bench(galleries=[200, 400], probes=300, target=0.01, progress=False)
    assert [r["gallery"] for r in report["rows"]] == [200, 400]
    for row in report["rows"]:
        assert row["threshold_gallery_size"] == row["gallery"]
        assert row["false_positives"] == round(row["fpir"] * 300)
        assert {"reference_tail", "fixed_threshold", "within_1_5x", "fpir_interval"} <= set(row)
    first, second = report["rows"]
    assert second["threshold"] > first["threshold"]
    assert "fixed 0.464" in render_fpir(report)
