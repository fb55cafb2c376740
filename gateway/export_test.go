package gateway

import "github.com/redis/go-redis/v9"

// RedisOptions are the options the node's Redis client dials with (on a
// cluster, each node).
func RedisOptions(s *Server) *redis.Options { return s.redisOpts }
