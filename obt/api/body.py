"""Request bodies a route parses itself (the heartbeat): same validation, same errors, same docs.

FastAPI parses a declared body with the standard json module and then validates the objects;
pydantic can validate straight from the bytes, in one pass. A route that does so declares its
body for the OpenAPI document with `json_body` and parses it with `parse_json_body`, whose
errors are the RequestValidationError every other route raises.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

M = TypeVar("M", bound=BaseModel)

REF_TEMPLATE = "#/components/schemas/{model}"
_DOCUMENTED: list[type[BaseModel]] = []


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body is `model` (see `document_bodies`)."""
    _DOCUMENTED.append(model)
    schema = {"$ref": REF_TEMPLATE.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def parse_json_body(model: type[M], raw: bytes) -> M:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=raw) from None


def document_bodies(app: FastAPI) -> None:
    """Add the models named by `json_body` to the app's OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _, defs = models_json_schema(
                [(model, "validation") for model in _DOCUMENTED], ref_template=REF_TEMPLATE
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in defs.get("$defs", {}).items():
                components.setdefault(name, definition)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
