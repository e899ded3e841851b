"""Catalogs: every entry validates, has a source, and the required entries are there."""

import pytest

from planner import catalog
from planner.errors import InputError

REQUIRED = {
    "gpus": ["a100-sxm-80gb", "h100-sxm-80gb", "h800-sxm-80gb", "h200-sxm-141gb", "b200", "gb200", "mi300x", "l40s"],
    "nodes": ["dgx-a100-80gb", "dgx-h100", "hgx-h800", "hgx-h200", "dgx-b200", "gb200-nvl72"],
    "models": ["gpt3-175b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen2.5-32b", "mixtral-8x7b",
               "deepseek-v3", "qwen3-30b-a3b"],
}


@pytest.mark.parametrize("kind", catalog.KINDS)
def test_entries_validate_and_cite_a_source(kind):
    for name in catalog.names(kind):
        catalog.get(kind, name)
        assert catalog.entry(kind, name).get("source"), name
    assert set(REQUIRED[kind]) <= set(catalog.names(kind))


def test_dense_not_sparse_peaks():
    # NVIDIA prints 1,979 BF16 "with sparsity" for H100 SXM; dense is 989 (hardware_notes.md 1).
    assert catalog.gpu("h100-sxm-80gb").tflops.bf16 == pytest.approx(989, abs=1)
    assert catalog.gpu("a100-sxm-80gb").tflops.bf16 == pytest.approx(312, abs=0.5)
    assert catalog.gpu("b200").tflops.bf16 == pytest.approx(2250, rel=0.02)
    assert catalog.gpu("mi300x").tflops.bf16 == pytest.approx(1307, rel=0.01)


def test_gb200_tray_and_nvlink_domain_differ():
    n = catalog.node("gb200-nvl72")
    assert n.gpus_per_node == 4 and n.domain == 72


def test_catalog_objects_are_immutable():
    g = catalog.gpu("h100-sxm-80gb")
    with pytest.raises(Exception):
        g.memory_gib = 1
    e = catalog.entry("gpus", "h100-sxm-80gb")
    e["memory_gib"] = 1  # a copy: the catalog is unchanged
    assert catalog.gpu("h100-sxm-80gb").memory_gib != 1


@pytest.mark.parametrize("kind", catalog.KINDS)
def test_one_entry_parsed_alone_equals_the_whole_file(kind):
    """An entry looked up by name is parsed from its own text (catalog._items: start-up time); it
    equals the entry of the whole file's parse, for every shipped entry."""
    assert catalog._items(kind) is not None  # the shipped files take the fast path
    for e in catalog.raw(kind):
        assert catalog._one(kind, e["name"]) == catalog._thaw(e)
        assert catalog.entry(kind, e["name"]) == catalog._thaw(e)


@pytest.mark.parametrize("text", [
    "- name: a\n  x: &v 1\n- name: b\n  y: *v\n",  # an alias into another entry
    "- name: a\n  x: 1\n- name: a\n  x: 2\n",  # duplicate names: the whole parse reports them
    "---\n- name: a\n  x: 1\n",  # a document marker
    "- x: 1\n  name: a\n",  # the name is not the first key
])
def test_other_layouts_parse_the_whole_file(monkeypatch, text):
    monkeypatch.setattr(catalog, "_catalog_text", lambda kind: (text, "test.yaml"))
    catalog._items.cache_clear()
    catalog.raw.cache_clear()
    try:
        assert catalog._items("gpus") is None
        if text.count("name: a") == 2:
            with pytest.raises(InputError, match="duplicate"):
                catalog.entry("gpus", "a")
        else:
            assert catalog.entry("gpus", "a")["x"] == 1
    finally:
        catalog._items.cache_clear()
        catalog.raw.cache_clear()
