;; `alien`: a component that imports an interface swarm-host does not
;; provide (a made-up network API). The host must refuse to load it, naming
;; the import, before anything runs.
(component
  (import "swarm:teammate/network@0.1.0" (instance $net
    (export "connect" (func (param "host" string) (param "port" u16) (result u32)))
  ))
)
