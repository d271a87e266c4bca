package parts

import (
	"runtime"
	"sync"
)

// Count is how many parts n items make when a part has at least least of
// them: at most GOMAXPROCS, at least 1.
func Count(n, least int) int { return max(1, min(runtime.GOMAXPROCS(0), n/least)) }

// Cuts splits [0, n) into about parts runs of equal length, each moved to
// end where a run of items that belong together does (cont(j) reports
// whether item j belongs with item j-1): the bounds of the runs, 0 and n
// included, fewer runs when the items' own runs are long.
func Cuts(n, parts int, cont func(j int) bool) []int {
	cuts := []int{0}
	for i := 1; i < parts; i++ {
		j := max(i*n/parts, cuts[len(cuts)-1]+1)
		for j < n && cont(j) {
			j++
		}
		if j >= n {
			break
		}
		cuts = append(cuts, j)
	}
	return append(cuts, n)
}

// Run calls fn on each run [cuts[i], cuts[i+1]), on a goroutine each when
// there are two runs or more, and returns the error of the first run that
// failed: the one a run in order meets.
func Run(cuts []int, fn func(i, lo, hi int) error) error {
	runs := len(cuts) - 1
	if runs == 1 {
		return fn(0, cuts[0], cuts[1])
	}
	errs := make([]error, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() { errs[i] = fn(i, cuts[i], cuts[i+1]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Even returns the bounds of about parts runs of equal length over [0, n).
func Even(n, parts int) []int { return Cuts(n, parts, func(int) bool { return false }) }
