module github.com/ork-go/ork/migrations

go 1.26
