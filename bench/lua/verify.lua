-- wrk -s bench/lua/verify.lua: the "verify" scenario (see common.lua and bench/README.md).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = "verify"
require("common")
