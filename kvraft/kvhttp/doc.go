// Package kvhttp serves a kvraft replica over HTTP/JSON and provides a Go
// client for it.
//
//	PUT    /v1/kv/{key}            body = value (application/octet-stream) -> {"index": N}
//	DELETE /v1/kv/{key}                                   -> {"index": N}
//	POST   /v1/kv/batch            {"ops": [...]}         -> {"index": N}
//	POST   /v1/kv/txn              {"if": [...], "then": [...], "else": [...]}
//	                                -> {"index": N, "succeeded": bool}
//	GET    /v1/kv/{key}?consistency=...&max_staleness=...&index=N
//	                                -> raw value, X-Penny-Index and X-Penny-Mod-Index headers; 404 if absent
//	GET    /v1/kv?prefix=P|start=S&end=E&limit=N&continue=T&consistency=...
//	                                -> {"index": N, "items": [{"key" or "key_b64", "value", "mod_index"}],
//	                                    "more": bool, "continue": T}
//	GET    /v1/cluster              -> {"id", "leader", "term", "applied_index", "members"}
//	POST   /v1/cluster/members      {"id", "peer_url", "api_url"} -> {"index": N}
//	DELETE /v1/cluster/members/{id}                       -> {"index": N}
//	GET    /v1/health               -> 200 when a leader is known, else 503
//
// A key is the request's escaped path after /v1/kv/, percent-decoded once
// and never cleaned or redirected (Route puts the handler in front of a
// mux). In JSON a key is "key" when it is valid UTF-8 and "key_b64"
// (base64) otherwise; values are base64. Range answers are paged by count
// and bytes with a continue token. POST bodies must be application/json,
// PUT bodies application/octet-stream (415 otherwise), and a mutation with
// an Origin header must be JSON (403): browser-style requests change
// nothing. Errors are JSON objects with an "error" message, counted by
// status. Every body is size-limited (Config.MaxRequestBytes, 1.5 MiB)
// before it is read, and every parameter is validated; a bad request
// changes nothing.
package kvhttp
