"""The HTTP listener (ORDERGATE_HTTP_LISTEN): every RPC over Connect and gRPC-Web
(connect_calls.py), and a plain XML POST of orders (orders_post.py), served in the same process
and event loop as gRPC (listener.py, app.py). docs/http.md is the user's side of it."""
