package wire

import (
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
)

// Changing the golden files is changing the format: a decoder in the field
// reads what they hold. Bump Version when they have to change.
var update = flag.Bool("update", false, "rewrite wire/testdata from golden_test.go (a format change: bump Version)")

// The golden files, in wire/testdata: NAME.bin holds the bytes, NAME.json
// what they mean.

// goldenFrames returns the frames of the golden files, as an Encoder writes
// them from a short sequence of snapshots.
func goldenFrames(t *testing.T) map[string][]byte {
	t.Helper()
	tm := time.Date(2026, 3, 1, 12, 0, 0, 250_000_000, time.UTC)
	var kubeletSRTT, kubeletConnect Hist
	kubeletSRTT.Buckets[6], kubeletSRTT.Buckets[9] = 40, 2
	kubeletSRTT.Count, kubeletSRTT.Sum = 42, 40*90+2*700
	kubeletConnect.Buckets[7] = 3
	kubeletConnect.Count, kubeletConnect.Sum = 3, 500
	s1 := &Snapshot{Time: tm, Interval: time.Second, Series: []SeriesState{
		{Path: "/", ID: 1, Values: Values{Processes: 2, RSSBytes: 8 << 20}},
		{Path: "/system.slice/kubelet.service", ID: 2041, Values: Values{Processes: 1, RSSBytes: 93 << 20,
			PageCacheBytes: 12 << 20, PageCacheAddedBytes: 14 << 20, PageCacheEvictedBytes: 2 << 20,
			PageCacheAccesses: 9000, PageCacheMisses: 120, Retransmits: 1, RxBytes: 1_250_000, TxBytes: 830_000,
			RxPackets: 2100, TxPackets: 1900, SRTT: kubeletSRTT, Connect: kubeletConnect}},
		{Path: "/kubepods.slice/kubepods-pod1.slice/cri-containerd-0a1b.scope", ID: 3077,
			Values: Values{Processes: 4, RSSBytes: 210 << 20}},
	}}
	s2 := s1.Clone()
	s2.Time = tm.Add(time.Second)
	k := &s2.Series[1]
	k.RSSBytes -= 8192
	k.RxBytes += 1500
	k.RxPackets += 2
	k.SRTT.Buckets[9] += 2
	k.SRTT.Count += 2
	k.SRTT.Sum += 1400
	s2.Series = append(s2.Series[:2], SeriesState{Path: "/system.slice/sshd.service", ID: 2090,
		Values: Values{Processes: 1, RSSBytes: 5 << 20}})
	s3 := s2.Clone()
	s3.Time = tm.Add(2 * time.Second)
	s3.Meta = map[string]string{"agent_version": "0.3.0", "kernel": "6.18.44"}
	s3.Series = append(s3.Series, SeriesState{Path: "/kubepods.slice/kubepods-pod2.slice/cri-containerd-77ee.scope",
		ID: 3120, Meta: map[string]string{"pod_uid": "5f1c9a7e-2b1d-4c8e-9d3a-6e0f1b2c3d4e", "namespace": "shop",
			"pod": "cart-7d9f", "container_id": "77ee", "label/app": "cart"}, Values: Values{Processes: 1, RSSBytes: 64 << 20}})
	s3.Series[0].Meta = map[string]string{"role": "host"}

	enc := newTestEncoder(t, 0x5eed_0000_0000_0001, Limits{})
	enc.agentID = "worker-1.example.com"
	frames := map[string][]byte{
		"keyframe":      mustEncode(t, enc, s1, false),
		"delta":         mustEncode(t, enc, s2, false),
		"delta-meta":    mustEncode(t, enc, s3, false),
		"keyframe-meta": mustEncode(t, enc, s3, true),
	}
	for name, b := range cpuGoldenFrames(t) {
		frames[name] = b
	}
	for name, b := range requestGoldenFrames(t) {
		frames[name] = b
	}
	for name, b := range latencyGoldenFrames(t) {
		frames[name] = b
	}
	return frames
}

// cpuGoldenFrames are the frames of the fields added at keys 18 to 32
// (CPU, pressure stall, working set, egress by class), in an incarnation
// of their own: the files above stay byte for byte what they were.
func cpuGoldenFrames(t *testing.T) map[string][]byte {
	t.Helper()
	tm := time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)
	s1 := &Snapshot{Time: tm, Interval: time.Second, Series: []SeriesState{
		// The host's root: pressure stall information unknown (an old
		// kernel, or psi=0): the flag is 0 and no counter is sent.
		{Path: "/", ID: 1, Values: Values{Processes: 90, RSSBytes: 400 << 20, CPUUsageUsec: 3_600_000_000,
			MemoryWorkingSetBytes: 900 << 20, TxLoopbackBytes: 10_000}},
		{Path: "/kubepods.slice/kubepods-pod1.slice/cri-containerd-0a1b.scope", ID: 3077, Values: Values{
			Processes: 4, RSSBytes: 210 << 20, CPUUsageUsec: 720_000_000, CPUPeriods: 36_000, CPUThrottledPeriods: 1200,
			CPUThrottledUsec: 95_000_000, PressureKnown: 1, CPUPressureSomeUsec: 40_000_000, CPUPressureFullUsec: 31_000_000,
			MemoryPressureSomeUsec: 1200, IOPressureSomeUsec: 800_000, IOPressureFullUsec: 600_000,
			MemoryWorkingSetBytes: 180 << 20, TxBytes: 9_000_000, TxLoopbackBytes: 1_000_000, TxClusterBytes: 7_500_000,
			TxInternetBytes: 500_000}},
	}}
	s2 := s1.Clone()
	s2.Time = tm.Add(time.Second)
	c := &s2.Series[1].Values
	c.CPUUsageUsec += 450_000 // 0.45 cores over the second
	c.CPUPeriods += 10
	c.CPUThrottledPeriods += 2
	c.CPUThrottledUsec += 35_000
	c.CPUPressureSomeUsec += 60_000
	c.CPUPressureFullUsec += 40_000
	c.MemoryWorkingSetBytes -= 1 << 20
	c.TxBytes += 3000
	c.TxClusterBytes += 2800
	c.TxInternetBytes += 200
	s2.Series[0].CPUUsageUsec += 1_100_000

	enc := newTestEncoder(t, 0x5eed_0000_0000_0002, Limits{})
	enc.agentID = "worker-1.example.com"
	return map[string][]byte{
		"keyframe-cpu": mustEncode(t, enc, s1, false),
		"delta-cpu":    mustEncode(t, enc, s2, false),
	}
}

// requestGoldenFrames are a keyframe and a delta of a server's requests
// (keys 33 and 34).
func requestGoldenFrames(t *testing.T) map[string][]byte {
	t.Helper()
	tm := time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)
	var lat Hist
	for _, us := range []uint64{900, 1100, 20_000, 20_500, 250_000} {
		lat.Buckets[bucketOf(us)]++
		lat.Count++
		lat.Sum += us
	}
	s1 := &Snapshot{Time: tm, Interval: time.Second, Series: []SeriesState{
		{Path: "/system.slice/web.service", ID: 4242, Values: Values{Processes: 2, RSSBytes: 80 << 20,
			RxBytes: 90_000, TxBytes: 400_000, Requests: 6, RequestLatency: lat}},
	}}
	s2 := s1.Clone()
	s2.Time = tm.Add(time.Second)
	c := &s2.Series[0].Values
	c.Requests += 2 // one of them untimed
	c.RequestLatency.Buckets[bucketOf(21_000)]++
	c.RequestLatency.Count++
	c.RequestLatency.Sum += 21_000
	c.RxBytes += 300
	c.TxBytes += 8000

	enc := newTestEncoder(t, 0x5eed_0000_0000_0003, Limits{})
	enc.agentID = "worker-1.example.com"
	return map[string][]byte{
		"keyframe-requests": mustEncode(t, enc, s1, false),
		"delta-requests":    mustEncode(t, enc, s2, false),
	}
}

// latencyGoldenFrames are a keyframe and a delta of a server's requests as
// an agent that knows key 35 sends them: the latency in log-linear
// buckets (35) and the same samples in log2 buckets (34).
func latencyGoldenFrames(t *testing.T) map[string][]byte {
	t.Helper()
	tm := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	var lat Hist
	var fine LogLinearHist
	observe := func(lat *Hist, fine *LogLinearHist, us ...uint64) {
		for _, v := range us {
			lat.Buckets[bucketOf(v)]++
			lat.Count++
			lat.Sum += v
		}
		*fine = logLinearOf(*fine, us...)
	}
	observe(&lat, &fine, 5, 900, 1100, 20_000, 20_100, 20_500, 250_000)
	s1 := &Snapshot{Time: tm, Interval: time.Second, Series: []SeriesState{
		{Path: "/system.slice/web.service", ID: 4243, Values: Values{Processes: 2, RSSBytes: 80 << 20,
			RxBytes: 90_000, TxBytes: 400_000, Requests: 7, RequestLatency: lat, RequestLatencyLogLinear: fine}},
	}}
	s2 := s1.Clone()
	s2.Time = tm.Add(time.Second)
	c := &s2.Series[0].Values
	c.Requests += 3
	observe(&c.RequestLatency, &c.RequestLatencyLogLinear, 20_050, 20_600, 3_000)
	c.RxBytes += 450
	c.TxBytes += 12000

	enc := newTestEncoder(t, 0x5eed_0000_0000_0004, Limits{})
	enc.agentID = "worker-1.example.com"
	return map[string][]byte{
		"keyframe-latency": mustEncode(t, enc, s1, false),
		"delta-latency":    mustEncode(t, enc, s2, false),
	}
}

// bucketOf is the log2 bucket of us.
func bucketOf(us uint64) int {
	b := 0
	for us > 1 && b < HistBuckets-1 {
		us >>= 1
		b++
	}
	return b
}

func goldenAcks() map[string]Ack {
	return map[string]Ack{
		"ack-ok":       {Incarnation: 0x5eed_0000_0000_0001, Seq: 4, Applied: 4, Status: StatusOK},
		"ack-gap":      {Incarnation: 0x5eed_0000_0000_0001, Seq: 7, Applied: 5, Status: StatusGap},
		"ack-rejected": {Incarnation: 0x5eed_0000_0000_0001, Seq: 8, Applied: 5, Status: StatusRejected, Reason: ReasonInconsistent},
	}
}

func TestGoldenFrames(t *testing.T) {
	for name, b := range goldenFrames(t) {
		t.Run(name, func(t *testing.T) {
			binPath := filepath.Join("testdata", name+".bin")
			jsonPath := filepath.Join("testdata", name+".json")
			if *update {
				writeFile(t, binPath, b)
				writeFile(t, jsonPath, marshalJSON(t, describeFrame(mustDecode(t, b))))
			}
			golden := readFile(t, binPath)
			var desc goldenFrame
			if err := json.Unmarshal(readFile(t, jsonPath), &desc); err != nil {
				t.Fatal(err)
			}
			want, err := desc.frame()
			if err != nil {
				t.Fatal(err)
			}
			got := mustDecode(t, golden)
			if !reflect.DeepEqual(withBodyLen(got, 0), want) {
				t.Fatalf("%s decodes to\n %+v\nwhile %s says\n %+v", binPath, got, jsonPath, want)
			}
			again, err := AppendFrame(nil, want, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			requireSameFrame(t, again, golden, "encoded from "+jsonPath)
			requireSameFrame(t, b, golden, "written by the Encoder")
		})
	}
}

// requireSameFrame compares two frames' headers and decompressed bodies
// byte for byte. The compressed bytes are left out: they are snappy's
// business, and any snappy output decodes the same.
func requireSameFrame(t *testing.T, got, want []byte, what string) {
	t.Helper()
	hg, err := DecodeHeader(got, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	hw, err := DecodeHeader(want, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n := HeaderSize + len(hw.AgentID)
	if !bytes.Equal(got[:offBodyLen], want[:offBodyLen]) || !bytes.Equal(got[HeaderSize:n], want[HeaderSize:hg.Len()-hg.BodyLen]) {
		t.Fatalf("header %s differs from the golden file:\n got  %x\n want %x", what, got[:n], want[:n])
	}
	bg, err := snappy.Decode(nil, got[n:])
	if err != nil {
		t.Fatal(err)
	}
	bw, err := snappy.Decode(nil, want[n:])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bg, bw) {
		t.Fatalf("body %s differs from the golden file:\n got  %x\n want %x", what, bg, bw)
	}
}

func TestGoldenAcks(t *testing.T) {
	for name, a := range goldenAcks() {
		t.Run(name, func(t *testing.T) {
			binPath := filepath.Join("testdata", name+".bin")
			jsonPath := filepath.Join("testdata", name+".json")
			b, err := a.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				writeFile(t, binPath, b)
				writeFile(t, jsonPath, marshalJSON(t, describeAck(a)))
			}
			golden := readFile(t, binPath)
			var desc goldenAck
			if err := json.Unmarshal(readFile(t, jsonPath), &desc); err != nil {
				t.Fatal(err)
			}
			want := desc.ack()
			got, err := DecodeAck(golden)
			if err != nil || got != want {
				t.Fatalf("%s decodes to %+v, %v; %s says %+v", binPath, got, err, jsonPath, want)
			}
			if again, _ := want.AppendBinary(nil); !bytes.Equal(again, golden) || !bytes.Equal(b, golden) {
				t.Fatalf("ack encodes to %x, golden file holds %x", again, golden)
			}
		})
	}
}

// goldenFrame is the readable description of a frame in the golden files.
type goldenFrame struct {
	Keyframe    bool              `json:"keyframe"`
	AgentID     string            `json:"agent_id"`
	Incarnation string            `json:"incarnation"` // hex: JSON numbers lose uint64 precision
	Seq         uint64            `json:"seq"`
	Base        uint64            `json:"base"`
	Time        time.Time         `json:"time"`
	IntervalNs  int64             `json:"interval_ns"`
	MetaSet     bool              `json:"meta_set"`
	Meta        map[string]string `json:"meta,omitempty"`
	Series      []goldenSeries    `json:"series,omitempty"`
	Removed     []uint64          `json:"removed,omitempty"`
}

type goldenSeries struct {
	Ref     uint64                `json:"ref"`
	New     bool                  `json:"new"`
	Path    string                `json:"path,omitempty"`
	ID      uint64                `json:"id,omitempty"`
	MetaSet bool                  `json:"meta_set"`
	Meta    map[string]string     `json:"meta,omitempty"`
	Gauges  map[string]int64      `json:"gauges,omitempty"`
	Counts  map[string]uint64     `json:"counters,omitempty"`
	Hists   map[string]goldenHist `json:"histograms,omitempty"`
}

type goldenHist struct {
	Count   uint64            `json:"count"`
	Sum     uint64            `json:"sum"`
	Buckets map[string]uint64 `json:"buckets,omitempty"` // bucket index: count
}

// Field names in the descriptions, by body key.
var goldenNames = map[uint64]string{
	keyProcesses: "processes", keyRSS: "rss_bytes", keyPageCache: "page_cache_bytes",
	keyPCAdded: "page_cache_added_bytes", keyPCEvicted: "page_cache_evicted_bytes",
	keyPCAccesses: "page_cache_accessed_pages", keyPCMisses: "page_cache_missed_pages",
	keyRetransmits: "tcp_retransmits", keyRxBytes: "rx_bytes", keyTxBytes: "tx_bytes",
	keyRxPackets: "rx_packets", keyTxPackets: "tx_packets", keySRTT: "tcp_srtt_us", keyConnect: "tcp_connect_us",
	keyCPUUsage: "cpu_usage_us", keyCPUPeriods: "cpu_periods", keyCPUThrottledPeriods: "cpu_throttled_periods",
	keyCPUThrottled: "cpu_throttled_us", keyPressureKnown: "pressure_known",
	keyCPUPressureSome: "cpu_pressure_some_us", keyCPUPressureFull: "cpu_pressure_full_us",
	keyMemoryPressureSome: "memory_pressure_some_us", keyMemoryPressureFull: "memory_pressure_full_us",
	keyIOPressureSome: "io_pressure_some_us", keyIOPressureFull: "io_pressure_full_us",
	keyWorkingSet: "memory_working_set_bytes", keyTxLoopback: "tx_loopback_bytes", keyTxCluster: "tx_cluster_bytes",
	keyTxInternet: "tx_internet_bytes", keyRequests: "requests", keyRequestLatency: "request_latency_us",
	keyRequestLatencyLogLinear: "request_latency_loglinear_us",
}

// TestGoldenNames names every series field.
func TestGoldenNames(t *testing.T) {
	for _, f := range seriesFields {
		if goldenNames[f.key] == "" {
			t.Errorf("series key %d has no name in the golden files", f.key)
		}
	}
	if len(seriesFields) != numSeriesKeys-4 || len(goldenNames) != len(seriesFields) {
		t.Errorf("%d fields, %d names, keys 4 to %d", len(seriesFields), len(goldenNames), numSeriesKeys-1)
	}
}

func describeFrame(f *Frame) goldenFrame {
	g := goldenFrame{Keyframe: f.Keyframe, AgentID: f.AgentID, Incarnation: strconv.FormatUint(f.Incarnation, 16),
		Seq: f.Seq, Base: f.Base, Time: f.Time, IntervalNs: int64(f.Interval), MetaSet: f.MetaSet, Meta: f.Meta,
		Removed: f.Removed}
	for _, u := range f.Series {
		gs := goldenSeries{Ref: u.Ref, New: u.New, Path: u.Path, ID: u.ID, MetaSet: u.MetaSet, Meta: u.Meta,
			Gauges: map[string]int64{}, Counts: map[string]uint64{}, Hists: map[string]goldenHist{}}
		for _, gf := range gaugeFields {
			if v := *gf.get(&u.Values); v != 0 {
				gs.Gauges[goldenNames[gf.key]] = v
			}
		}
		for _, cf := range counterFields {
			if v := *cf.get(&u.Values); v != 0 {
				gs.Counts[goldenNames[cf.key]] = v
			}
		}
		for _, hf := range histFields {
			if h := hf.get(&u.Values); !h.IsZero() {
				gh := goldenHist{Count: h.Count, Sum: h.Sum, Buckets: map[string]uint64{}}
				for i, n := range h.Buckets {
					if n != 0 {
						gh.Buckets[strconv.Itoa(i)] = n
					}
				}
				gs.Hists[goldenNames[hf.key]] = gh
			}
		}
		for _, hf := range logLinearFields {
			if h := hf.get(&u.Values); !h.IsZero() {
				gh := goldenHist{Count: h.Count, Sum: h.Sum, Buckets: map[string]uint64{}}
				for _, b := range h.Buckets {
					gh.Buckets[strconv.Itoa(int(b.Index))] = b.N
				}
				gs.Hists[goldenNames[hf.key]] = gh
			}
		}
		g.Series = append(g.Series, gs)
	}
	return g
}

func (g *goldenFrame) frame() (*Frame, error) {
	inc, err := strconv.ParseUint(g.Incarnation, 16, 64)
	if err != nil {
		return nil, err
	}
	f := &Frame{Header: Header{Keyframe: g.Keyframe, AgentID: g.AgentID, Incarnation: inc, Seq: g.Seq, Base: g.Base},
		Time: g.Time.UTC(), Interval: time.Duration(g.IntervalNs), MetaSet: g.MetaSet, Meta: g.Meta, Removed: g.Removed}
	for _, gs := range g.Series {
		u := SeriesUpdate{Ref: gs.Ref, New: gs.New, Path: gs.Path, ID: gs.ID, MetaSet: gs.MetaSet, Meta: gs.Meta}
		for _, gf := range gaugeFields {
			*gf.get(&u.Values) = gs.Gauges[goldenNames[gf.key]]
		}
		for _, cf := range counterFields {
			*cf.get(&u.Values) = gs.Counts[goldenNames[cf.key]]
		}
		for _, hf := range histFields {
			gh := gs.Hists[goldenNames[hf.key]]
			h := hf.get(&u.Values)
			h.Count, h.Sum = gh.Count, gh.Sum
			for i, n := range gh.Buckets {
				b, err := strconv.Atoi(i)
				if err != nil || b < 0 || b >= HistBuckets {
					return nil, fmt.Errorf("bucket %q", i)
				}
				h.Buckets[b] = n
			}
		}
		for _, hf := range logLinearFields {
			gh := gs.Hists[goldenNames[hf.key]]
			h := hf.get(&u.Values)
			h.Count, h.Sum = gh.Count, gh.Sum
			for i, n := range gh.Buckets {
				b, err := strconv.Atoi(i)
				if err != nil || b < 0 || b >= LogLinearBuckets {
					return nil, fmt.Errorf("bucket %q", i)
				}
				h.Buckets = append(h.Buckets, LogLinearBucket{Index: uint32(b), N: n})
			}
			slices.SortFunc(h.Buckets, func(a, b LogLinearBucket) int { return cmp.Compare(a.Index, b.Index) })
		}
		f.Series = append(f.Series, u)
	}
	return f, nil
}

type goldenAck struct {
	Incarnation string `json:"incarnation"`
	Seq         uint64 `json:"seq"`
	Applied     uint64 `json:"applied"`
	Status      uint8  `json:"status"`
	StatusName  string `json:"status_name"`
	Reason      uint8  `json:"reason"`
	ReasonName  string `json:"reason_name"`
}

func describeAck(a Ack) goldenAck {
	return goldenAck{Incarnation: strconv.FormatUint(a.Incarnation, 16), Seq: a.Seq, Applied: a.Applied,
		Status: uint8(a.Status), StatusName: a.Status.String(), Reason: uint8(a.Reason), ReasonName: a.Reason.String()}
}

func (g *goldenAck) ack() Ack {
	inc, _ := strconv.ParseUint(g.Incarnation, 16, 64)
	return Ack{Incarnation: inc, Seq: g.Seq, Applied: g.Applied, Status: Status(g.Status), Reason: Reason(g.Reason)}
}

func marshalJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create the golden files)", err)
	}
	return b
}
