package cost

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Window is a half-open interval [Start, End) of time, in UTC.
type Window struct {
	Start, End time.Time
}

// Duration is End - Start.
func (w Window) Duration() time.Duration { return w.End.Sub(w.Start) }

// Minutes is the window's length in minutes.
func (w Window) Minutes() float64 { return w.Duration().Minutes() }

const day = 24 * time.Hour

var (
	durationWindow = regexp.MustCompile(`^(\d{1,7})(m|h|d|w)$`)
	offsetWindow   = regexp.MustCompile(`^(\d{1,7})(m|h|d|w) offset (\d{1,7})(m|h|d|w)$`)
	unixPair       = regexp.MustCompile(`^(\d{1,12})[,-](\d{1,12})$`)
)

func unit(s string) time.Duration {
	switch s {
	case "h":
		return time.Hour
	case "d":
		return day
	case "w":
		return 7 * day
	}
	return time.Minute
}

// count parses the number of units of a duration window; the regexp keeps
// it under 10^7, so no product below overflows before the caller bounds it.
func count(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// parseWindow reads OpenCost's window grammar relative to now, in UTC:
//
//   - today, yesterday (whole days), week and month (from the start of the
//     week, a Sunday, or of the month, to now), lastweek and lastmonth;
//   - N followed by m, h, d or w: the last N units, aligned as OpenCost
//     aligns them: the window ends at the end of the current unit (so
//     "24h" at 10:17 is yesterday 11:00 to today 11:00, and "7d" is six
//     whole days and today), a week counting as seven days;
//   - "N<unit> offset M<unit>": N units ending M units before now;
//   - two RFC3339 times or two Unix times (seconds), comma-separated
//     ("-" also separates Unix times).
//
// It returns a reason, not an error: the caller names the parameter.
func parseWindow(s string, now time.Time) (Window, string) {
	now = now.UTC()
	today := now.Truncate(day)
	switch s {
	case "":
		return Window{}, "is required"
	case "today":
		return Window{today, today.Add(day)}, ""
	case "yesterday":
		return Window{today.Add(-day), today}, ""
	case "week":
		return Window{today.Add(-day * time.Duration(today.Weekday())), now}, ""
	case "lastweek":
		start := today.Add(-day * time.Duration(today.Weekday()+7))
		return Window{start, start.Add(7 * day)}, ""
	case "month":
		return Window{today.AddDate(0, 0, 1-today.Day()), now}, ""
	case "lastmonth":
		end := today.AddDate(0, 0, 1-today.Day())
		return Window{end.AddDate(0, -1, 0), end}, ""
	}
	if m := durationWindow.FindStringSubmatch(s); m != nil {
		n, u := count(m[1]), unit(m[2])
		if n == 0 {
			return Window{}, "is empty"
		}
		if u == 7*day {
			// OpenCost ends a week window with today, like "7d".
			u, n = day, n*7
		}
		end := now.Truncate(u).Add(u)
		return Window{end.Add(-time.Duration(n) * u), end}, ""
	}
	if m := offsetWindow.FindStringSubmatch(s); m != nil {
		n, u := count(m[1]), unit(m[2])
		if n == 0 {
			return Window{}, "is empty"
		}
		end := now.Add(-time.Duration(count(m[3])) * unit(m[4]))
		return Window{end.Add(-time.Duration(n) * u), end}, ""
	}
	if m := unixPair.FindStringSubmatch(s); m != nil {
		return Window{time.Unix(count(m[1]), 0).UTC(), time.Unix(count(m[2]), 0).UTC()}, ""
	}
	if a, b, ok := strings.Cut(s, ","); ok {
		start, err1 := time.Parse(time.RFC3339, strings.TrimSpace(a))
		end, err2 := time.Parse(time.RFC3339, strings.TrimSpace(b))
		if err1 != nil || err2 != nil {
			return Window{}, "is not two RFC3339 times (2026-01-02T15:04:05Z,2026-01-03T15:04:05Z) or two Unix times"
		}
		return Window{start.UTC(), end.UTC()}, ""
	}
	return Window{}, "is not today, yesterday, week, lastweek, month, lastmonth, a duration (30m, 24h, 7d, 2w), " +
		"\"<duration> offset <duration>\", two RFC3339 times or two Unix times"
}

// parseStep reads a step: a Go duration (90m, 1h30m) or N days or weeks
// (1d, 2w), as OpenCost accepts.
func parseStep(s string) (time.Duration, bool) {
	if m := durationWindow.FindStringSubmatch(s); m != nil {
		return time.Duration(count(m[1])) * unit(m[2]), true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}
