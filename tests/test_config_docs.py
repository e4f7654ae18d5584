"""config/README.md (the workflow catalog's page of the config) describes every key, in step
with the schema: its tables are generated from symflow/config.schema.yaml (symflow.config_docs)."""

from __future__ import annotations

import re

import yaml

from conftest import CONFIG, REPO
from symflow.config_docs import MARKER, SPEED, key_tables, main, render

README = REPO / "config" / "README.md"


def _sections(text: str) -> dict[str, str]:
    """'### `key`' heading -> the text under it (the generated part)."""
    generated = text.split(MARKER, 1)[1]
    parts = re.split(r"^### `([^`]+)`$", generated, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def _row_keys(section: str) -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.M))


def test_config_readme_is_in_step_with_the_schema():
    text = README.read_text()
    assert render(text) == text, "config/README.md is stale: run python -m symflow.config_docs config/README.md"


def test_every_key_of_the_default_config_has_a_row():
    """Each top-level key of the default config (config/config.yaml with the schema's defaults
    filled in) has a section, and each key below it (nested keys dotted, down to the mappings
    whose keys are free: widths, block sizes) a row with its default."""
    from symflow.configuration import validate

    sections = _sections(README.read_text())
    config = validate(yaml.safe_load(CONFIG.read_text()))
    assert set(config) == set(sections)
    free = {("sgd", "widths"), ("kernels", "block_size"), ("experiments", "fig2", "network_transforms")}

    def leaves(value, path):
        if isinstance(value, dict) and value and not any(path[:len(f)] == f for f in free):
            for k, v in value.items():
                yield from leaves(v, (*path, k))
        else:
            yield path

    for key, value in config.items():
        if not isinstance(value, dict) or not value:
            assert re.search(r"Default:? `", sections[key]), key
            continue
        rows = _row_keys(sections[key])
        for path in leaves(value, (key,)):
            assert ".".join(path[1:]) in rows, f"{'.'.join(path)} has no row in config/README.md"
    # a default shown is the config's: data.n_train
    assert re.search(r"^\| `n_train` \| integer \| `1000` \|", sections["data"], flags=re.M)
    # speed knobs are marked; a result-changing key is not
    assert re.search(rf"^\| `threads` \|[^\n]*{re.escape(SPEED)}", sections["kernels"], flags=re.M)
    assert SPEED not in next(line for line in sections["data"].splitlines() if line.startswith("| `n_train`"))


def test_check_mode_and_rewrite(tmp_path, capsys):
    stale = tmp_path / "README.md"
    stale.write_text(f"# hand-written\n\n{MARKER}\n\nold tables\n")
    assert main(["--check", str(stale)]) == 1
    assert "out of step" in capsys.readouterr().err
    assert main([str(stale)]) == 0
    assert stale.read_text() == f"# hand-written\n\n{MARKER}\n\n{key_tables()}"
    assert main(["--check", str(stale)]) == 0
    (tmp_path / "plain.md").write_text("# no marker\n")
    assert main([str(tmp_path / "plain.md")]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line
