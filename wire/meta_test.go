package wire

import (
	"testing"
	"time"
)

// TestMetaSentOnChange: the same metadata map again costs nothing, a new
// map with other contents is sent, and a new map with the same contents is
// not.
func TestMetaSentOnChange(t *testing.T) {
	enc := newTestEncoder(t, 7, Limits{})
	a := map[string]string{"k8s.pod": "web-1", "k8s.namespace": "shop"}
	b := map[string]string{"k8s.pod": "web-2", "k8s.namespace": "shop"}
	bCopy := map[string]string{"k8s.pod": "web-2", "k8s.namespace": "shop"}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		name    string
		meta    map[string]string
		rss     int64
		metaSet bool
	}{
		{"keyframe", a, 1, true},
		{"same map, values changed", a, 2, false},
		{"same map, nothing changed", a, 2, false},
		{"new contents", b, 2, true},
		{"equal contents in another map", bCopy, 3, false},
		{"cleared", nil, 3, true},
	}
	for i, step := range steps {
		s := &Snapshot{Time: t0.Add(time.Duration(i) * time.Second), Interval: time.Second,
			Series: []SeriesState{{Path: "/p/c", ID: 9, Meta: step.meta, Values: Values{RSSBytes: step.rss}}}}
		f := mustDecode(t, mustEncode(t, enc, s, false))
		set := false
		for _, u := range f.Series {
			set = set || u.MetaSet
		}
		if set != step.metaSet {
			t.Errorf("%s: metadata sent %v, want %v", step.name, set, step.metaSet)
		}
	}
}

func TestMetaEqual(t *testing.T) {
	a := map[string]string{"pod": "web-1"}
	for _, tc := range []struct {
		name string
		x, y map[string]string
		want bool
	}{
		{"the same map", a, a, true},
		{"equal maps", a, map[string]string{"pod": "web-1"}, true},
		{"different values", a, map[string]string{"pod": "web-2"}, false},
		{"nil and empty", nil, map[string]string{}, true},
		{"nil and a map", nil, a, false},
		{"both nil", nil, nil, true},
	} {
		if got := MetaEqual(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
