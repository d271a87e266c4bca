// Package kvhttp serves a kvraft replica over HTTP/JSON and provides a Go
// client for it.
//
//	PUT    /v1/kv/{key}            body = value           -> {"index": N}
//	DELETE /v1/kv/{key}                                   -> {"index": N}
//	POST   /v1/kv/batch            {"ops": [...]}         -> {"index": N}
//	POST   /v1/kv/txn              {"if": [...], "then": [...], "else": [...]}
//	                                -> {"index": N, "succeeded": bool}
//	GET    /v1/kv/{key}?consistency=...&max_staleness=...&index=N
//	                                -> raw value, X-Penny-Index and X-Penny-Mod-Index headers; 404 if absent
//	GET    /v1/kv?prefix=P|start=S&end=E&limit=N&consistency=...
//	                                -> {"index": N, "items": [{"key", "value", "mod_index"}], "more": bool}
//	GET    /v1/cluster              -> {"id", "leader", "term", "applied_index", "members"}
//	POST   /v1/cluster/members      {"id", "peer_url", "api_url"} -> {"index": N}
//	DELETE /v1/cluster/members/{id}                       -> {"index": N}
//	GET    /v1/health               -> 200 when a leader is known, else 503
//
// Values in JSON are base64. Errors are JSON objects with an "error"
// message. Every body is size-limited before it is read, and every
// parameter is validated; a bad request changes nothing.
package kvhttp
