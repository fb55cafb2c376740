package run

import (
	"strings"
	"testing"
	"time"
)

func TestHistoryBounds(t *testing.T) {
	cases := []struct {
		args   []string
		maxLen int64
		maxAge time.Duration
	}{
		{nil, 10000, time.Hour},
		{[]string{"--send-queue", "64"}, 10000, time.Hour},
		{[]string{"--history-maxlen", "50"}, 50, time.Hour},
		{[]string{"-history-maxlen=50", "--history-max-age=0"}, 50, 0},
		{[]string{"--history-maxlen", "50", "--history-maxlen", "70"}, 70, time.Hour},
		{[]string{"--history-maxlen", "lots"}, 0, 0},
		{[]string{"--history-max-age"}, 0, 0},
	}
	for _, tc := range cases {
		if l, a := historyBounds(tc.args); l != tc.maxLen || a != tc.maxAge {
			t.Errorf("historyBounds(%q) = %d, %s; want %d, %s", tc.args, l, a, tc.maxLen, tc.maxAge)
		}
	}
}

func TestPatternMode(t *testing.T) {
	for args, want := range map[string]bool{"": false, "--subscribe-mode pattern": true, "--subscribe-mode=pattern": true, "--subscribe-mode targeted": false} {
		var a []string
		if args != "" {
			a = strings.Fields(args)
		}
		if got := patternMode(a); got != want {
			t.Errorf("patternMode(%q) = %v, want %v", args, got, want)
		}
	}
}
