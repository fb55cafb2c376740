package backoff

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

func TestCeilingDoublesAndCaps(t *testing.T) {
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := Ceiling(100, 1000, i); got != w {
			t.Fatalf("attempt %d: %d, want %d", i, got, w)
		}
	}
	if got := Ceiling(time.Second, time.Minute, 1000); got != time.Minute {
		t.Fatalf("huge attempt: %s", got)
	}
}

func TestFullJitterStaysUnderTheCeilingAndIsSeedable(t *testing.T) {
	a, b := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1000; i++ {
		x, y := FullJitter(time.Millisecond, time.Second, i%12, a), FullJitter(time.Millisecond, time.Second, i%12, b)
		if x != y {
			t.Fatal("the same seed gave another draw")
		}
		if x < 0 || x > Ceiling(time.Millisecond, time.Second, i%12) {
			t.Fatalf("draw %s out of range", x)
		}
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep outlived its context")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep cut short")
	}
}
