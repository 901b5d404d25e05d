"""A property test: command lines and API calls drawn from every option and argument -- absurd sizes,
non-finite and wrong-typed values, odd text, wrong combinations -- run under a 2 GB address-space cap
(``tests/hostile_driver.py`` says what each must come to).

The default budget keeps it to well under a minute with derandomised examples (the same on every run);
``TINYGAN_HOSTILE_EXAMPLES=N`` runs N fresh random examples of each kind.
"""

from __future__ import annotations

import os

from capped import run_capped

DEFAULT_EXAMPLES = 200  # of command lines, and as many API calls: about 20 s here


def test_hostile_command_lines_and_api_calls_get_a_clear_answer(tmp_path):
    examples = int(os.environ.get("TINYGAN_HOSTILE_EXAMPLES", DEFAULT_EXAMPLES))
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    code = f"import hostile_driver\nhostile_driver.main({str(sandbox)!r}, {examples})\n"
    result = run_capped("-c", code, cwd=tmp_path, timeout=max(300, 2 * examples))
    assert result.returncode == 0, result.stderr[-6000:]
    assert "call returned" in result.stdout and "train exit 0" in result.stdout, result.stdout
