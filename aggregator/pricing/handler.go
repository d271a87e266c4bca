package pricing

import (
	"encoding/json"
	"net/http"
	"time"
)

// Path is where the Handler is served.
const Path = "/v1/pricing"

// Response is the body of GET /v1/pricing.
type Response struct {
	// Source is where the prices come from: default (OpenCost's), file or
	// flags.
	Source Source `json:"source"`
	// File is the pricing file's path, SHA256 the hash of the version in
	// force and LoadedAt when it was put in force.
	File     string    `json:"file,omitempty"`
	SHA256   string    `json:"sha256,omitempty"`
	LoadedAt time.Time `json:"loadedAt"`
	// Overrides are the on-demand prices the command line set.
	Overrides *OverridesJSON `json:"overrides,omitempty"`
	// Refused says why the file as it is now is not in force.
	Refused *RefusalJSON `json:"refused,omitempty"`
	// Pricing is the prices in force, as a complete pricing file.
	Pricing *File `json:"pricing"`
}

// OverridesJSON is Overrides in a Response.
type OverridesJSON struct {
	CPUCoreHour *float64 `json:"cpuCoreHour,omitempty"`
	RAMGiBHour  *float64 `json:"ramGiBHour,omitempty"`
}

// RefusalJSON is a Refusal in a Response.
type RefusalJSON struct {
	Time   time.Time `json:"time"`
	SHA256 string    `json:"sha256,omitempty"`
	Error  string    `json:"error"`
}

// Handler serves the prices in force, read-only, at Path.
func (w *Watcher) Handler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rw.Header().Set("Allow", "GET, HEAD")
			writeJSON(rw, http.StatusMethodNotAllowed, map[string]string{"error": "use GET"})
			return
		}
		if len(r.URL.Query()) > 0 {
			writeJSON(rw, http.StatusBadRequest, map[string]string{"error": "GET " + Path + " takes no parameters"})
			return
		}
		writeJSON(rw, http.StatusOK, w.Status().response())
	})
}

func (st *Status) response() Response {
	p := st.Pricing
	resp := Response{Source: p.Source(), File: st.File, SHA256: st.SHA256, LoadedAt: st.LoadedAt.UTC(), Pricing: p.Effective()}
	if o := p.overrides; o.set() {
		resp.Overrides = &OverridesJSON{CPUCoreHour: o.CPUCoreHour, RAMGiBHour: o.RAMGiBHour}
	}
	if r := st.Refused; r != nil {
		resp.Refused = &RefusalJSON{Time: r.Time.UTC(), SHA256: r.SHA256, Error: r.Err.Error()}
	}
	return resp
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away
}
