// Package smoke_test is the first chaos suite: it proves the building block
// every region stands on, a real redis-server driven by the lab's helpers,
// starts, answers and survives a restart. It stays as a fast "is the
// machine able to run the lab" check once the lab's suites exist.
package smoke_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestSmoke(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Smoke Suite", Label("smoke"))
}
