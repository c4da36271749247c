import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import SettingsError
from agent.ollama_host import parse_ollama_host


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("  ", "http://127.0.0.1:11434"),
        ("gpu-box", "http://gpu-box:11434"),
        ("gpu-box:8080", "http://gpu-box:8080"),
        ("10.0.0.5", "http://10.0.0.5:11434"),
        ("http://gpu-box", "http://gpu-box:80"),
        ("https://gpu-box", "https://gpu-box:443"),
        ("https://gpu-box:8443", "https://gpu-box:8443"),
        ("http://gpu-box:8080/ollama/", "http://gpu-box:8080/ollama"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:11500", "http://127.0.0.1:11500"),
        (":11434", "http://127.0.0.1:11434"),
        ("[::]:11434", "http://[::1]:11434"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("::1", "http://[::1]:11434"),
    ],
)
def test_follows_ollamas_rules(value: str | None, expected: str) -> None:
    assert parse_ollama_host(value).base_url == expected


@pytest.mark.parametrize(
    "value", ["gpu-box:port", "gpu-box:0", "gpu-box:70000", "ftp://gpu-box", "[::1", "bad host"]
)
def test_bad_values_name_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_ollama_host(value)
    assert caught.value.variable == "OLLAMA_HOST"
    assert "127.0.0.1:11434" in caught.value.fix


@given(st.integers(min_value=1, max_value=65535))
def test_any_valid_port_is_kept(port: int) -> None:
    assert parse_ollama_host(f"gpu-box:{port}").port == port


@given(st.text(max_size=40))
def test_never_fails_with_anything_but_a_settings_error(value: str) -> None:
    try:
        endpoint = parse_ollama_host(value)
    except SettingsError:
        return
    assert endpoint.base_url.startswith(("http://", "https://"))
