"""The README shows shipped files verbatim: what it quotes must be what ships."""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_readme_quotes_the_hub_configuration_as_it_is():
    config = (ROOT / "classroom" / "jupyterhub_config.py").read_text()
    assert f"```python\n{config}```\n" in (ROOT / "README.md").read_text(), \
        "README.md's copy of classroom/jupyterhub_config.py differs from the file"
