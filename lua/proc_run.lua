-- SPDX-License-Identifier: MIT (see LICENSE)
-- luaio.proc_run: proc.run(cmd, opts), built on proc.spawn.
return function(proc)
  return function(cmd, opts)
    error("proc.run: not yet")
  end
end
