"""The service's endpoints, one module per group; `artflow.serve.service` only wires them.

Each group is a plain class holding the logic, constructed with the parts it uses, and a
mixin of `@bentoml.api` declarations (signature, bounds, docstring, one delegating line)
that `artflow.serve.service.Artflow` inherits: BentoML collects the API methods of the
service class with `dir()`, inherited ones included, so /docs.json and BentoML's client are
those of one class. A mixin whose bounds come from the settings is made by a function of
the settings (`style.api(settings)`), called once where the service reads them.

- `plumbing`: decode with the large-decode gate, threaded runs with timeout and cancel,
  responses and their metrics, the caller's identity, memory trimming;
- `recording`: the prediction log writer and the A/B assignment record;
- `classify`, `style`, `feedback`, `admin`: the endpoint groups.
"""
