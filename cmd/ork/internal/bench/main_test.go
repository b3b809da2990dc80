package bench

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/bus/bustest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.ServerLeftovers()...)
}
