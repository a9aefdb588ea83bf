namespace DataMarket.Catalog.Model;

/// <summary>
/// The valuation life cycle. Status events come from several workers over several queues, so they arrive late,
/// twice or out of order; each consumer therefore applies its event as one conditional update that only moves a
/// valuation forward: Pending -> Running -> Completed | Failed | Cancelled, with Pending -> terminal allowed (a result
/// can overtake the start). A terminal state never changes again. Facts that an event carries but the row lacks
/// (start time, sizes) are filled in whatever order they come, so no event's information is lost.
/// </summary>
public static class ValuationStateMachine
{
    public static bool IsTerminal(ValuationStatus status) =>
        status is ValuationStatus.Completed or ValuationStatus.Failed or ValuationStatus.Cancelled;

    public static bool CanMove(ValuationStatus from, ValuationStatus to) => (from, to) switch
    {
        (ValuationStatus.Pending, ValuationStatus.Running) => true,
        (ValuationStatus.Pending or ValuationStatus.Running, _) when IsTerminal(to) => true,
        _ => false,
    };
}
