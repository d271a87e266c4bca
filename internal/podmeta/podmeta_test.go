package podmeta_test

import (
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/wire"
)

func TestRoundTrip(t *testing.T) {
	manyLabels := map[string]string{}
	for i := range podmeta.MaxLabels + 7 {
		manyLabels[fmt.Sprintf("l%03d", i)] = "v"
	}
	tests := []struct {
		name      string
		pod       podmeta.Pod
		container podmeta.Container
		wantPod   podmeta.Pod
	}{
		{
			name: "full",
			pod: podmeta.Pod{UID: "0b5c3a52-8d2e-4f5e-9c1a-1f2e3d4c5b6a", Namespace: "shop", Name: "web-7d9f-abcde",
				Labels: map[string]string{"app": "web", "app.kubernetes.io/part-of": "shop"}, QOSClass: "Burstable",
				OwnerKind: "ReplicaSet", OwnerName: "web-7d9f"},
			container: podmeta.Container{Name: "app", ID: "abc123", RequestCPUMillis: 250, RequestMemory: 64 << 20,
				LimitCPUMillis: 1000, LimitMemory: 128 << 20},
		},
		{
			name:      "sandbox without labels",
			pod:       podmeta.Pod{UID: "u1", Namespace: "ns", Name: "p"},
			container: podmeta.Container{},
		},
		{
			name:      "labels over the limit keep the smallest keys",
			pod:       podmeta.Pod{UID: "u2", Namespace: "ns", Name: "p", Labels: manyLabels},
			container: podmeta.Container{Name: "c"},
			wantPod: func() podmeta.Pod {
				kept := map[string]string{}
				for i := range podmeta.MaxLabels {
					kept[fmt.Sprintf("l%03d", i)] = "v"
				}
				return podmeta.Pod{UID: "u2", Namespace: "ns", Name: "p", Labels: kept, LabelsTruncated: 7}
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := podmeta.Encode(&tt.pod, &tt.container)
			if len(m) > wire.DefaultMaxMetaEntries {
				t.Fatalf("%d entries, the wire takes %d", len(m), wire.DefaultMaxMetaEntries)
			}
			p, c, ok, err := podmeta.Decode(m)
			if !ok || err != nil {
				t.Fatalf("decode: ok=%v err=%v", ok, err)
			}
			want := tt.wantPod
			if want.UID == "" {
				want = tt.pod
			}
			if !p.Equal(&want) {
				t.Errorf("pod = %+v, want %+v", p, want)
			}
			if c != tt.container {
				t.Errorf("container = %+v, want %+v", c, tt.container)
			}
			if again := podmeta.Encode(&p, &c); !maps.Equal(again, m) {
				t.Errorf("re-encoding differs:\n%v\n%v", again, m)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		meta    map[string]string
		ok      bool
		invalid bool
	}{
		{"nil", nil, false, false},
		{"not a pod", map[string]string{"unit": "nginx.service"}, false, false},
		{"pod", map[string]string{podmeta.KeyPodUID: "u", podmeta.KeyNamespace: "n", podmeta.KeyPod: "p"}, true, false},
		{"no name", map[string]string{podmeta.KeyPodUID: "u", podmeta.KeyNamespace: "n"}, false, true},
		{"bad request", map[string]string{podmeta.KeyPodUID: "u", podmeta.KeyNamespace: "n", podmeta.KeyPod: "p",
			podmeta.KeyRequestMemory: "12Mi"}, false, true},
		{"negative limit", map[string]string{podmeta.KeyPodUID: "u", podmeta.KeyNamespace: "n", podmeta.KeyPod: "p",
			podmeta.KeyLimitCPU: "-1"}, false, true},
		{"bad truncation count", map[string]string{podmeta.KeyPodUID: "u", podmeta.KeyNamespace: "n", podmeta.KeyPod: "p",
			podmeta.KeyLabelsTruncated: "x"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, ok, err := podmeta.Decode(tt.meta)
			if ok != tt.ok || errors.Is(err, podmeta.ErrInvalid) != tt.invalid {
				t.Errorf("ok=%v err=%v, want ok=%v invalid=%v", ok, err, tt.ok, tt.invalid)
			}
		})
	}
}
