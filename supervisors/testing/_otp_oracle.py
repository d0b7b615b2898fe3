"""The OTP side of the differential (``_differential.py``): an escript run by ``escript`` on real Erlang/OTP.

Kept as a string so it ships inside the Python package with no data-file configuration; ``run_on_otp``
writes it next to the scenario file and runs it.
"""

from typing import Final

SOURCE: Final = r"""#!/usr/bin/env escript
%% The OTP side of mcpvisor's differential test (see _differential.py).
%%
%% Reads a file of scenarios written by the Python side, runs every scenario at once on the real OTP
%% `supervisor` (one process per scenario, all aligned to the same phase of the second), and prints
%% each scenario's trace as "Index<TAB>Event" lines. Events are recorded in an ordered ETS table keyed
%% by erlang:unique_integer([monotonic]), so they keep the causal order in which they happened.
%%
%% OTP counts restart windows in whole seconds of monotonic time. Every scenario starts 100 ms after
%% a whole second and every pause is a whole number of seconds re-aligned to that phase, so each
%% restart lands in a known second: both sides then agree on which restarts a window keeps.
-mode(compile).
-export([init/1, start_worker/3, start_dyn_worker/4]).

main([File]) ->
    logger:set_primary_config(level, none),
    {ok, Scenarios} = file:consult(File),
    Now = erlang:monotonic_time(millisecond),
    T0 = (Now div 1000 + 1) * 1000 + 100,
    Self = self(),
    [spawn(fun() -> Self ! {done, Idx, run(Tree, Steps, T0)} end) || {Idx, Tree, Steps} <- Scenarios],
    Results = collect(length(Scenarios), []),
    [[io:format("~b\t~s~n", [Idx, Event]) || Event <- Trace] || {Idx, Trace} <- lists:sort(Results)],
    io:format("done~n"),
    halt(0).

collect(0, Acc) -> Acc;
collect(N, Acc) ->
    receive {done, Idx, Trace} -> collect(N - 1, [{Idx, Trace} | Acc])
    after 300000 -> halt(3)
    end.

%% ---- one scenario ---------------------------------------------------------------------------------

run(Tree, Steps, T0) ->
    process_flag(trap_exit, true),
    Trace = ets:new(trace, [ordered_set, public]),
    Ctl = ets:new(ctl, [set, public]),
    Ctx = {Trace, Ctl, Tree},
    sleep_until(T0),
    case catch supervisor:start_link(?MODULE, {Ctx, "", Tree}) of
        {ok, Root} ->
            settle(Root, Trace),
            Alive = steps(Steps, Root, Ctx, T0, true),
            case Alive of
                true ->
                    exit(Root, shutdown),
                    receive {'EXIT', Root, _} -> ok after 120000 -> ev(Trace, "root_stop_timeout") end;
                false -> ok
            end;
        _ -> ev(Trace, "root_start_error")
    end,
    [E || {_, E} <- ets:tab2list(Trace)].

steps([], _Root, _Ctx, _T0, Alive) -> Alive;
steps(_, _Root, _Ctx, _T0, false) -> false;
steps([Step | Rest], Root, {Trace, _, _} = Ctx, T0, true) ->
    step(Step, Root, Ctx, T0),
    settle(Root, Trace),
    Alive = receive {'EXIT', Root, _} -> ev(Trace, "root_exit"), false after 0 -> true end,
    steps(Rest, Root, Ctx, T0, Alive).

step({pause, Seconds}, _Root, _Ctx, T0) ->
    Target = erlang:monotonic_time(millisecond) + Seconds * 1000,
    sleep_until(T0 + round((Target - T0) / 1000) * 1000);
step({fail, Path, N, DelayMs}, _Root, {_, Ctl, _}, _T0) ->
    ets:insert(Ctl, {{fail, Path}, N}),
    ets:insert(Ctl, {{fail_delay, Path}, DelayMs});
step({ignore, Path, N}, _Root, {_, Ctl, _}, _T0) -> ets:insert(Ctl, {{ignore, Path}, N});
step({crash, Path}, _Root, Ctx, _T0) -> tell(Path, crash, Ctx);
step({normal, Path}, _Root, Ctx, _T0) -> tell(Path, normal, Ctx);
step({crash_call, Path, Op, Id}, Root, Ctx, T0) ->
    %% no settling in between: the call reaches the supervisor right behind the child's exit
    tell(Path, crash, Ctx),
    step({api, Op, Id}, Root, Ctx, T0);
step({dyn_start, DynId, Name}, Root, {Trace, _, _}, _T0) ->
    case child_pid(Root, DynId) of
        undefined -> ok;
        Dyn ->
            Result = result(catch supervisor:start_child(Dyn, [Name])),
            ev(Trace, "api start_child " ++ DynId ++ "/" ++ Name ++ " " ++ Result)
    end;
step({dyn_terminate, DynId, Name}, Root, {Trace, Ctl, _}, _T0) ->
    case {child_pid(Root, DynId), ets:lookup(Ctl, {pid, DynId ++ "/" ++ Name})} of
        {undefined, _} -> ok;
        {_, []} -> ok;
        {Dyn, [{_, Pid}]} ->
            Result = result(catch supervisor:terminate_child(Dyn, Pid)),
            ev(Trace, "api terminate_child " ++ DynId ++ "/" ++ Name ++ " " ++ Result)
    end;
step({api, Op, Id}, Root, {Trace, _, _} = Ctx, _T0) ->
    Result = case Op of
        start_child -> catch supervisor:start_child(Root, spec_of(Id, Ctx));
        _ -> catch supervisor:Op(Root, Id)
    end,
    ev(Trace, lists:flatten(["api ", atom_to_list(Op), " ", Id, " ", result(Result)])).

tell(Path, What, {_, Ctl, _}) ->
    case ets:lookup(Ctl, {pid, Path}) of
        [{_, Pid}] ->
            case is_process_alive(Pid) of
                true ->
                    Ref = monitor(process, Pid),
                    Pid ! What,
                    receive {'DOWN', Ref, process, Pid, _} -> ok end;
                false -> ok
            end;
        [] -> ok
    end.

spec_of(Id, {_, _, {sup, _, Children}} = Ctx) ->
    [Child] = [C || C <- Children, element(2, C) =:= Id],
    child_spec(Child, Ctx, "").

child_pid(Root, Id) ->
    case [P || {I, P, _, _} <- supervisor:which_children(Root), I =:= Id, is_pid(P)] of
        [Pid] -> Pid;
        [] -> undefined
    end.

result(ok) -> "ok";
result({ok, _}) -> "ok";
result({ok, _, _}) -> "ok";
result({error, not_found}) -> "not_found";
result({error, running}) -> "running";
result({error, restarting}) -> "restarting";
result({error, already_present}) -> "already_present";
result({error, {already_started, _}}) -> "already_present";
result({error, _}) -> "error";
result({'EXIT', _}) -> "exit".

ev(Trace, Event) -> ets:insert(Trace, {erlang:unique_integer([monotonic, positive]), Event}).

sleep_until(T) ->
    case T - erlang:monotonic_time(millisecond) of
        D when D > 0 -> timer:sleep(D);
        _ -> ok
    end.

%% Settled: two snapshots of the whole tree (and of the trace) alike, taken a little apart. A call to
%% a supervisor is answered only between two of its own messages, so a restart in hand finishes first.
settle(Root, Trace) -> settle(Root, Trace, snapshot(Root, Trace), 0).

settle(_Root, _Trace, _Prev, 200) -> ok;
settle(Root, Trace, Prev, N) ->
    timer:sleep(5),
    case snapshot(Root, Trace) of
        Prev -> ok;
        Next -> settle(Root, Trace, Next, N + 1)
    end.

snapshot(Root, Trace) -> {ets:info(Trace, size), tree(Root)}.

tree(Sup) ->
    case catch supervisor:which_children(Sup) of
        Children when is_list(Children) ->
            [{Id, Pid, case {Type, is_pid(Pid)} of {supervisor, true} -> tree(Pid); _ -> [] end}
             || {Id, Pid, Type, _} <- Children];
        _ -> dead
    end.

%% ---- the supervisor callback and the workers ------------------------------------------------------

init({Ctx, Prefix, {sup, Flags, Children}}) ->
    {ok, {Flags, [child_spec(C, Ctx, Prefix) || C <- Children]}};
init({Ctx, Prefix, {dyn, Flags, {worker, Id, Restart, _, Shutdown, StopDelay}}}) ->
    Template = with_shutdown(#{id => Id, start => {?MODULE, start_dyn_worker, [Ctx, Prefix, StopDelay]},
                               restart => Restart, type => worker}, Shutdown),
    {ok, {Flags#{strategy => simple_one_for_one}, [Template]}}.

child_spec({worker, Id, Restart, Significant, Shutdown, StopDelay}, Ctx, Prefix) ->
    with_shutdown(#{id => Id, start => {?MODULE, start_worker, [Ctx, Prefix ++ Id, StopDelay]},
                    restart => Restart, significant => Significant, type => worker}, Shutdown);
child_spec({dyn, Id, Restart, Significant, Flags, Template}, Ctx, Prefix) ->
    Args = {Ctx, Prefix ++ Id ++ "/", {dyn, Flags, Template}},
    #{id => Id, start => {supervisor, start_link, [?MODULE, Args]},
      restart => Restart, significant => Significant, type => supervisor};
child_spec({sup, Id, Restart, Significant, Shutdown, Tree}, Ctx, Prefix) ->
    with_shutdown(#{id => Id, start => {supervisor, start_link, [?MODULE, {Ctx, Prefix ++ Id ++ "/", Tree}]},
                    restart => Restart, significant => Significant, type => supervisor}, Shutdown).

with_shutdown(Spec, default) -> Spec;
with_shutdown(Spec, Shutdown) -> Spec#{shutdown => Shutdown}.

start_dyn_worker(Ctx, Prefix, StopDelay, Name) -> start_worker(Ctx, Prefix ++ Name, StopDelay).

start_worker({Trace, Ctl, _}, Path, StopDelay) ->
    case take(Ctl, {fail, Path}) of
        true ->
            case ets:lookup(Ctl, {fail_delay, Path}) of
                [{_, Delay}] when Delay > 0 -> timer:sleep(Delay);
                _ -> ok
            end,
            ev(Trace, "fail " ++ Path),
            {error, planned_failure};
        false ->
            case take(Ctl, {ignore, Path}) of
                true -> ev(Trace, "ignore " ++ Path), ignore;
                false ->
                    Sup = self(),
                    %% synchronous, as a gen_server's start_link: exits are trapped before it returns
                    Pid = spawn_link(fun() ->
                                             process_flag(trap_exit, true),
                                             Sup ! {ready, self()},
                                             worker(Sup, Trace, Path, StopDelay)
                                     end),
                    receive {ready, Pid} -> ok end,
                    ets:insert(Ctl, {{pid, Path}, Pid}),
                    ev(Trace, "start " ++ Path),
                    {ok, Pid}
            end
    end.

take(Ctl, Key) ->
    case ets:lookup(Ctl, Key) of
        [{_, N}] when N > 0 -> ets:insert(Ctl, {Key, N - 1}), true;
        _ -> false
    end.

worker(Sup, Trace, Path, StopDelay) ->
    receive
        crash -> ev(Trace, "crash " ++ Path), exit(crash);
        normal -> ev(Trace, "normal " ++ Path), exit(normal);
        {'EXIT', Sup, Reason} -> timer:sleep(StopDelay), ev(Trace, "stop " ++ Path), exit(Reason);
        _ -> worker(Sup, Trace, Path, StopDelay)
    end.
"""
