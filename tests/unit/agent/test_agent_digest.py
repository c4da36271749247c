from agent.digest import models_digest

# Computed by hand: hashlib.sha256("llama3.2:3b@sha256:aaa\nqwen2.5:7b@sha256:bbb\n"
#   "loaded:llama3.2:3b@0\nloaded:qwen2.5:7b@3000000000".encode()).hexdigest()
EXPECTED = "be171f89158ae91ae65d8e7d30fa7c638f29d49682cfbd9528d1aee8cc16b712"


def test_digest_matches_the_contract_layout() -> None:
    installed = [("qwen2.5:7b", "sha256:bbb"), ("llama3.2:3b", "sha256:aaa")]
    loaded = [("qwen2.5:7b", 3_000_000_000), ("llama3.2:3b", 0)]
    assert models_digest(installed, loaded) == EXPECTED


def test_order_of_input_does_not_matter() -> None:
    a = models_digest([("a", "1"), ("b", "2")], [("a", 5)])
    b = models_digest([("b", "2"), ("a", "1")], [("a", 5)])
    assert a == b


def test_empty_set_is_sha256_of_nothing() -> None:
    assert models_digest([], []) == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_loading_a_model_changes_the_digest() -> None:
    installed = [("a", "1")]
    assert models_digest(installed, []) != models_digest(installed, [("a", 0)])
    assert models_digest(installed, [("a", 1)]) != models_digest(installed, [("a", 2)])
