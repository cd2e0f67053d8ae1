module github.com/authserver-dev/authserver

go 1.26.0
