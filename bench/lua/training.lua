-- wrk -s bench/lua/training.lua: the "training" scenario (see common.lua and bench/README.md).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = "training"
require("common")
