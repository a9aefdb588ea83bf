using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Storage;
using DataMarket.Torch.Influence;
using DataMarket.Valuation;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Statistics;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>Bad request content found by the worker (unreadable data, unknown method): retrying cannot help.</summary>
public sealed class ValuationRejectedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Loads a request's datasets from the blob store and prepares its sharded valuation: <see cref="Prepare"/> where the
/// valuation is coordinated (for LoGra it logs the gradient store once), <see cref="Open"/> where its shards run or merge.
/// </summary>
public sealed class ValuationRunner(ContentAddressedBlobStore blobs, ShardStore store, ValuationDevice device, LograEngine logra)
{
    /// <summary>Checks the request and loads its datasets; anything wrong with them is a <see cref="ValuationRejectedException"/>.</summary>
    public (IReadOnlyList<TrainingPart> Parts, TabularDataset Test) LoadInputs(RequestValuation request)
    {
        if (!ValuationMethods.All.Contains(request.Method))
        {
            throw new ValuationRejectedException($"unknown valuation method '{request.Method}' (supported: {string.Join(", ", ValuationMethods.All)})");
        }

        if (!ValuationMethods.TaskTypes.Contains(request.TaskType))
        {
            throw new ValuationRejectedException($"unknown task type '{request.TaskType}' (supported: {string.Join(", ", ValuationMethods.TaskTypes)})");
        }

        if (request.K < 1)
        {
            throw new ValuationRejectedException($"K must be at least 1, got {request.K}");
        }

        var test = Load(request.Task, $"test task {request.TaskId}", expectedFeatures: null);
        var parts = request.Listings
            .Select(l => new TrainingPart(l.ListingId.ToString(), l.SellerId, Load(l.Data, $"listing {l.ListingId}", test.FeatureCount)))
            .ToList();
        return (parts, test);
    }

    /// <summary>
    /// The coordinator's preparation: loads and encodes the valuation; a LoGra valuation also trains its proxy (or loads
    /// the buyer's model) and writes its gradient store to the valuation's folder. Bad data is a <see cref="ValuationRejectedException"/>.
    /// </summary>
    public ShardedValuation Prepare(RequestValuation request, CancellationToken cancellationToken) => Prepare(request, coordinator: true, cancellationToken);

    /// <summary>A shard's or merger's preparation: for LoGra, the valuation over the stored gradient store (read on the first shard).</summary>
    public ShardedValuation Open(RequestValuation request) => Prepare(request, coordinator: false, CancellationToken.None);

    private ShardedValuation Prepare(RequestValuation request, bool coordinator, CancellationToken cancellationToken)
    {
        var (parts, test) = LoadInputs(request);
        if (request.Method == ValuationMethods.Logra)
        {
            if (request.TaskType != ValuationMethods.Classification)
            {
                throw new ValuationRejectedException($"method '{request.Method}' values classification tasks only");
            }

            return coordinator
                ? LogGradients(request, parts, test, cancellationToken)
                : logra.Open(parts, test, request.LograMode, () =>
                {
                    using var file = store.OpenFile(request.ValuationId, ShardStore.GradientStoreName);
                    return GradientStore.Read(file);
                });
        }

        try
        {
            return ShardedValuation.Prepare(
                request.Method, request.TaskType, parts, test, request.K, request.GroupOrder, $"test task {request.TaskId}", request.Task.LabelColumn, device);
        }
        catch (Exception exception) when (exception is DatasetFormatException or ValuationInputException or ArgumentException)
        {
            throw new ValuationRejectedException(exception.Message, exception);
        }
    }

    /// <summary>
    /// LoGra on the buyer's own checkpoint when the request names one (the catalog checked its tensors; it is copied
    /// out of the blob store to a file of this valuation's, since the loader reads a path), else on a proxy trained
    /// here; the store goes to the valuation's folder under one name, so a coordinator that runs again overwrites it.
    /// </summary>
    private ShardedValuation LogGradients(RequestValuation request, IReadOnlyList<TrainingPart> parts, TabularDataset test, CancellationToken cancellationToken)
    {
        void Persist(GradientStore gradients) => store.WriteFile(request.ValuationId, ShardStore.GradientStoreName, gradients.Write);
        if (request.Model is not { } model)
        {
            return logra.Log(parts, test, request.LograMode, checkpoint: null, Persist, cancellationToken);
        }

        var path = Path.Combine(Path.GetTempPath(), $"datamarket-model-{request.ValuationId:N}.safetensors");
        try
        {
            using (var source = blobs.OpenRead(model.BlobId))
            using (var file = File.Create(path))
            {
                source.CopyTo(file);
            }

            return logra.Log(parts, test, request.LograMode, path, Persist, cancellationToken);
        }
        catch (FileNotFoundException exception)
        {
            throw new ValuationRejectedException("the valuation's model was not found in the blob store", exception);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Stores the point values as a blob and builds the result message that names it.</summary>
    public async Task<ValuationCompleted> CompleteAsync(
        RequestValuation request, IReadOnlyList<TrainingPart> parts, int testPoints, DatasetValuationResult result, DateTimeOffset startedAt, CancellationToken cancellationToken)
    {
        // Point values go to the blob store and travel by reference: inline they grow with the data.
        PointValuesReference? pointValues = null;
        if (result.PartValues.Count > 0)
        {
            var segments = result.PartValues
                .Select((values, p) => new PointValueSegment(
                    request.Listings[p].ListingId,
                    values.Select(v => v.Value).ToArray(),
                    values.Select(v => v.StandardError).ToArray()))
                .ToList();
            var (blobId, count) = await PointValueBlob.StoreAsync(blobs, segments, cancellationToken);
            pointValues = new PointValuesReference { BlobId = blobId, Count = count };
        }

        var sellers = result.GroupOrder
            .Select(seller => new SellerValue
            {
                SellerId = seller,
                Points = parts.Where(p => p.Group == seller).Sum(p => p.Data.Rows),
                Value = result.GroupValues[seller].Value,
                StandardError = Finite(result.GroupValues[seller].StandardError),
            })
            .ToList();

        return new ValuationCompleted
        {
            ValuationId = request.ValuationId,
            Method = request.Method,
            TotalUtility = result.TotalUtility.Value,
            Sellers = sellers,
            PointValues = pointValues,
            TrainingPoints = parts.Sum(p => p.Data.Rows),
            TestPoints = testPoints,
            StartedAt = startedAt,
            CompletedAt = DateTimeOffset.UtcNow,
        };
    }

    // JSON has no NaN; a standard error that cannot be estimated travels as null.
    private static double? Finite(double value) => double.IsFinite(value) ? value : null;

    private TabularDataset Load(DatasetReference reference, string name, int? expectedFeatures)
    {
        if (!DatasetFormats.TryParse(reference.Format, out var format))
        {
            throw new ValuationRejectedException($"{name}: unknown dataset format '{reference.Format}'");
        }

        try
        {
            using var stream = blobs.OpenRead(reference.BlobId);
            return DatasetReader.Load(stream, new DatasetReadOptions
            {
                SourceName = name,
                Format = format,
                LabelColumn = reference.LabelColumn,
                ExpectedFeatures = expectedFeatures,
            });
        }
        catch (DatasetFormatException exception)
        {
            throw new ValuationRejectedException(exception.Message, exception);
        }
        catch (FileNotFoundException exception)
        {
            throw new ValuationRejectedException($"{name}: data not found in the blob store ({reference.BlobId})", exception);
        }
    }
}
