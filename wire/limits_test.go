package wire

import (
	"errors"
	"testing"
)

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		name string
		lim  Limits
		ok   bool
	}{
		{"zero means defaults", Limits{}, true},
		{"defaults", DefaultLimits(), true},
		{"negative series", Limits{MaxSeries: -1}, false},
		{"negative string length", Limits{MaxStringLen: -1}, false},
		{"negative metadata entries", Limits{MaxMetaEntries: -5}, false},
		{"frame below a header", Limits{MaxFrameBytes: HeaderSize}, false},
		{"frame over the cap", Limits{MaxFrameBytes: capFrameBytes + 1}, false},
		{"body over the cap", Limits{MaxBodyBytes: capBodyBytes + 1}, false},
		{"small but valid", Limits{MaxFrameBytes: HeaderSize + 1, MaxBodyBytes: 1, MaxSeries: 1, MaxStringLen: 1, MaxMetaEntries: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.lim.Validate()
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	l, err := Limits{MaxSeries: 7}.withDefaults()
	if err != nil || l.MaxSeries != 7 || l.MaxFrameBytes != DefaultMaxFrameBytes || l.MaxMetaEntries != DefaultMaxMetaEntries {
		t.Fatalf("withDefaults = %+v, %v", l, err)
	}
}

func TestSnapshotValidate(t *testing.T) {
	ok := func() *Snapshot {
		return &Snapshot{Time: t0, Interval: 1, Series: []SeriesState{{Path: "/a", ID: 1}, {Path: "/b", ID: 2}}}
	}
	tests := []struct {
		name   string
		change func(s *Snapshot)
		lim    Limits
		want   error
	}{
		{"valid", func(*Snapshot) {}, Limits{}, nil},
		{"zero time", func(s *Snapshot) { s.Time = s.Time.AddDate(-2000, 0, 0) }, Limits{}, ErrInvalid},
		{"negative interval", func(s *Snapshot) { s.Interval = -1 }, Limits{}, ErrInvalid},
		{"empty path", func(s *Snapshot) { s.Series[0].Path = "" }, Limits{}, ErrInvalid},
		{"duplicate path", func(s *Snapshot) { s.Series[1].Path = "/a" }, Limits{}, ErrInvalid},
		{"duplicate id", func(s *Snapshot) { s.Series[1].ID = 1 }, Limits{}, ErrInvalid},
		{"negative gauge", func(s *Snapshot) { s.Series[1].PageCacheBytes = -1 }, Limits{}, ErrInvalid},
		{"too many series", func(*Snapshot) {}, Limits{MaxSeries: 1}, ErrTooLarge},
		{"long path", func(s *Snapshot) { s.Series[0].Path = "/abcd" }, Limits{MaxStringLen: 4}, ErrTooLarge},
		{"empty metadata key", func(s *Snapshot) { s.Series[0].Meta = map[string]string{"": "x"} }, Limits{}, ErrInvalid},
		{"long metadata value", func(s *Snapshot) { s.Meta = map[string]string{"k": "abcde"} }, Limits{MaxStringLen: 4}, ErrTooLarge},
		{"too much metadata", func(s *Snapshot) { s.Series[1].Meta = map[string]string{"a": "", "b": ""} }, Limits{MaxMetaEntries: 1}, ErrTooLarge},
		{"invalid limits", func(*Snapshot) {}, Limits{MaxStringLen: -1}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok()
			tt.change(s)
			err := s.Validate(tt.lim)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncoderConfig(t *testing.T) {
	for _, c := range []EncoderConfig{
		{},
		{AgentID: "has space"},
		{AgentID: string(make([]byte, MaxAgentIDLen+1))},
		{AgentID: "ok", Limits: Limits{MaxSeries: -1}},
	} {
		if _, err := NewEncoder(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewEncoder(%+v): %v, want ErrInvalid", c, err)
		}
	}
	a, err := NewEncoder(EncoderConfig{AgentID: "n"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewEncoder(EncoderConfig{AgentID: "n"})
	if a.Incarnation() == 0 || a.Incarnation() == b.Incarnation() {
		t.Fatalf("random incarnations %#x and %#x", a.Incarnation(), b.Incarnation())
	}
}
