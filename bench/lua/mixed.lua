-- wrk -s bench/lua/mixed.lua: the "mixed" scenario (see common.lua and bench/README.md).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = "mixed"
require("common")
