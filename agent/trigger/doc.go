// Package trigger takes the agent's samples out of its interval when what
// autoscalers read moves: a cgroup's RSS by more than a share of it (5%
// and 1 MiB by default). The kernel does the watching (the RSS watches of
// bpf/memory.bpf.c): every RSS change a process makes is added to its
// cgroup's sum since the last sample, and the first to take it past the
// cgroup's limit wakes the agent, once per sample. The agent waits for
// the change to settle (at most Settle), samples and ships at once, so a
// change reaches the aggregators within about 50 ms instead of up to an
// interval later.
//
// A floor keeps a noisy cgroup from flooding the stream: samples are at
// least Floor apart, and changes cause at most PerSecond samples a second
// on average (Burst at once); a change past that budget waits for the next
// interval, as every change did before.
package trigger
