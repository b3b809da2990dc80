module github.com/ork-go/ork/services/scheduler

go 1.26

require (
	github.com/ork-go/ork/migrations v0.0.0
	github.com/ork-go/ork/pkg v0.0.0
)

replace (
	github.com/ork-go/ork/migrations => ../../migrations
	github.com/ork-go/ork/pkg => ../../pkg
)
