;; `tablebomb`: a hostile teammate component written by hand, because Rust
;; cannot emit `table.grow`. It claims a task (so the task is held when it
;; misbehaves), then grows a funcref table by 1000 elements at a time,
;; forever. The host's limiter must stop it at `table_elements`.
(component
  ;; The part of swarm:teammate/task-list@0.1.0 this guest uses.
  (import "swarm:teammate/task-list@0.1.0" (instance $task-list
    (type $task' (record
      (field "id" string)
      (field "subject" string)
      (field "description" string)
      (field "owned-files" (list string))
      (field "attempt" u32)))
    (export "task" (type $task (eq $task')))
    (export "claim" (func (result (option $task))))
  ))
  (alias export $task-list "claim" (func $claim))

  ;; Linear memory and a bump allocator, for strings the host passes in.
  (core module $libc
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
      (global.set $heap (i32.add (local.get $p) (local.get 3)))
      (block $fits
        (br_if $fits (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (drop (memory.grow (i32.add (i32.const 1)
          (i32.shr_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16))))))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (alias core export $libc "memory" (core memory $mem))
  (alias core export $libc "realloc" (core func $realloc))
  (core func $claim-lowered (canon lower (func $claim) (memory $mem) (realloc $realloc)))

  (core module $main
    (import "host" "claim" (func $claim (param i32)))
    (table $t 1 funcref)
    ;; run(me: identity) -> result<_, string>: six flat string params, the
    ;; result through a pointer. It never returns.
    (func (export "run") (param i32 i32 i32 i32 i32 i32) (result i32)
      (call $claim (i32.const 16))
      (loop $grow
        (drop (table.grow $t (ref.null func) (i32.const 1000)))
        (br $grow))
      (i32.const 0)))
  (core instance $main (instantiate $main
    (with "host" (instance (export "claim" (func $claim-lowered))))))

  (type $identity' (record (field "id" string) (field "team" string) (field "color" string)))
  (export $identity "identity" (type $identity'))
  (func $run (param "me" $identity) (result (result (error string)))
    (canon lift (core func $main "run") (memory $mem) (realloc $realloc)))
  (export "run" (func $run))
)
