"""authorize_net_simulator."""
