using System.Globalization;

namespace DataMarket.Torch.Influence;

/// <summary>
/// The class index of every label, for the CLI's <c>value logra</c> and the valuation worker alike. A proxy trained
/// here numbers the classes in ordinal-sorted order of all the labels given; a model given as a checkpoint was trained
/// on class indices, so every label must be one (0, 1, ...).
/// </summary>
public static class ClassLabels
{
    /// <summary>
    /// Maps each distinct label of <paramref name="sources"/> (training sources first, then the test task) to its
    /// class index. With <paramref name="checkpoint"/> the first label that is no class index is refused through
    /// <paramref name="refuse"/>, which gets the source's position in <paramref name="sources"/>, the 1-based row and
    /// the message, and returns the exception to throw (each caller names the source and row in its own terms).
    /// </summary>
    public static Dictionary<string, int> Indices(IReadOnlyList<IReadOnlyList<string>> sources, bool checkpoint, Func<int, int, string, Exception> refuse)
    {
        if (!checkpoint)
        {
            return sources.SelectMany(labels => labels).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
                .Select((label, index) => (label, index)).ToDictionary(c => c.label, c => c.index, StringComparer.Ordinal);
        }

        var classes = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var source = 0; source < sources.Count; source++)
        {
            var labels = sources[source];
            for (var row = 0; row < labels.Count; row++)
            {
                if (!classes.ContainsKey(labels[row]))
                {
                    classes[labels[row]] = int.TryParse(labels[row], NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                        ? index
                        : throw refuse(source, row + 1, $"a model given as a checkpoint needs class indices 0, 1, ... as labels, got '{labels[row]}'");
                }
            }
        }

        return classes;
    }
}
